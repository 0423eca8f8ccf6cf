//! Why a task waited: the reason each idle period ended, decided once from
//! what the event stream says about the thread that woke the task.
//!
//! A `Wake` event names the woken task and, when the wake happened inside a
//! recorded poll, the waking task. Everything else comes from the waking
//! thread's recent events, which the consumers see in each thread's own
//! order: whether it is polling, parked in the runtime's driver, running a
//! blocking section, or none of those. [`ThreadRoles`] keeps that per
//! thread, and [`ThreadRoles::wake_reason`] is the one rule:
//!
//! | reason | when | waker named |
//! |---|---|---|
//! | [`Yield`](WakeReason::Yield) | the task woke itself: inside its own poll (`wake_by_ref`, budget), or Tokio's deferred `yield_now` wake (outside any poll, on the thread whose last poll was that task, before it polled or parked again) | the task |
//! | [`Blocking`](WakeReason::Blocking) | from a thread inside an application blocking section (`spawn_blocking`, `block_in_place`), or outside any poll on the thread whose last section was a `spawn_blocking` one, before it polled, parked or started another (Tokio wakes a blocking task's `JoinHandle` after its section ends) | the blocking task, when known |
//! | [`Sync`](WakeReason::Sync) | from inside another task's poll: channels, `Notify`, `Mutex`, `oneshot`, `JoinHandle`... | the waking task |
//! | [`Timer`](WakeReason::Timer) | from a runtime thread outside any poll (the driver), for a task whose last poll waited on a timer resource (`Sleep`: needs resource waits on) | - |
//! | [`Io`](WakeReason::Io) | from a runtime thread outside any poll (the driver), otherwise: I/O readiness | - |
//! | [`Foreign`](WakeReason::Foreign) | from a thread that is not the runtime's (a plain `std::thread`, another runtime's `block_on`) | - |
//! | [`Unknown`](WakeReason::Unknown) | no `Wake` was recorded (runtime hooks only): the idle time ends at the next poll | - |
//!
//! Limits, stated where users read them (README, "Why tasks waited"):
//! - telling a timer from I/O needs the resource waits of Tokio's `tracing`
//!   instrumentation (`Sleep` is a resource); without them a timer wake
//!   counts as [`Io`](WakeReason::Io);
//! - Tokio's I/O and time drivers run on a worker thread outside any poll,
//!   as do its deferred `yield_now` wakes: the deferred-yield rule above
//!   tells them apart, and can take an I/O wake of the task a worker polled
//!   last, when the worker's next step is a zero-timeout driver poll, for a
//!   yield;
//! - a thread becomes a runtime thread in [`ThreadRoles`] once it polls a
//!   task on a worker, parks, or runs the runtime's own blocking section
//!   (Tokio starts its workers on its blocking pool); a wake from a runtime
//!   thread seen before any of those counts as [`Foreign`](WakeReason::Foreign).

use crate::event::{BlockingKind, DecodedEvent, Event};

/// Why an idle task became runnable (see the [module docs](self) for the
/// rule of each).
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
    /// was not seen, see the module docs).
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

#[derive(Clone, Copy, Debug, Default)]
struct Role {
    /// Task being polled (0: none).
    polling: u64,
    /// Task whose poll ended last on this thread, until the thread polls or
    /// parks again (0: none).
    last_polled: u64,
    /// The `spawn_blocking` task whose application section ended last on
    /// this thread, until the thread polls, parks or starts another
    /// section (0: none): Tokio wakes its `JoinHandle` after the section.
    after_section: u64,
    /// Seen polling on a worker, parking, or in a runtime blocking section.
    runtime: bool,
    /// Between `Park` and `Unpark`.
    parked: bool,
    section: Section,
}

/// What each recording thread is doing, from its own events: polling a
/// task, parked, in a blocking section, a runtime thread or not. Feed every
/// event to [`observe`](Self::observe) in each thread's order (a merged
/// stream is); ask [`wake_reason`](Self::wake_reason) for a `Wake` before
/// or after observing it (a `Wake` changes no role). Memory: a few bytes
/// per recording thread (at most 65,536).
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
/// assert_eq!(roles.wake_reason(&wake, false).reason, WakeReason::Io);
/// assert_eq!(roles.wake_reason(&wake, true).reason, WakeReason::Timer);
/// // The same wake from a thread never seen in the runtime: foreign.
/// wake.thread = 2;
/// assert_eq!(roles.wake_reason(&wake, false).reason, WakeReason::Foreign);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ThreadRoles {
    threads: Vec<Role>,
}

impl ThreadRoles {
    #[inline]
    fn role_mut(&mut self, thread: u16) -> &mut Role {
        let t = thread as usize;
        if self.threads.len() <= t {
            self.threads.resize(t + 1, Role::default());
        }
        &mut self.threads[t]
    }

    /// Updates the role of `e`'s thread. `runtime_section(task)` says
    /// whether the `spawn_blocking` task `task` is the runtime's own (its
    /// spawn site is inside Tokio, see
    /// [`Site::is_runtime_internal`](crate::Site::is_runtime_internal)); it
    /// is asked only for a `BlockingStart`.
    #[inline]
    pub fn observe(&mut self, e: &Event, runtime_section: impl FnOnce(u64) -> bool) {
        match e.decode() {
            DecodedEvent::PollStart { task, worker, .. } => {
                let r = self.role_mut(e.thread);
                r.polling = task;
                r.last_polled = 0;
                r.after_section = 0;
                r.runtime |= worker.is_some();
            }
            DecodedEvent::PollEnd { task, .. } => {
                let r = self.role_mut(e.thread);
                if r.polling == task {
                    r.polling = 0;
                }
                r.last_polled = task;
            }
            DecodedEvent::Park { .. } => {
                let r = self.role_mut(e.thread);
                r.parked = true;
                r.runtime = true;
                r.last_polled = 0;
                r.after_section = 0;
            }
            DecodedEvent::Unpark { .. } => self.role_mut(e.thread).parked = false,
            DecodedEvent::BlockingStart { task, kind, .. } => {
                let section = match (kind, task) {
                    (Some(BlockingKind::SpawnBlocking), Some(t)) if runtime_section(t) => {
                        Section::Runtime(t)
                    }
                    (_, t) => Section::App(t.unwrap_or(0)),
                };
                let r = self.role_mut(e.thread);
                r.runtime |= matches!(section, Section::Runtime(_));
                r.section = section;
                r.after_section = 0;
            }
            DecodedEvent::BlockingEnd { .. } => {
                let r = self.role_mut(e.thread);
                if let Section::App(t) = r.section {
                    r.after_section = t;
                }
                r.section = Section::None;
            }
            _ => {}
        }
    }

    /// Whether `thread` is inside the runtime's own blocking section (a
    /// worker thread Tokio started on its blocking pool).
    pub fn in_runtime_section(&self, thread: u16) -> bool {
        self.threads
            .get(thread as usize)
            .is_some_and(|r| matches!(r.section, Section::Runtime(_)))
    }

    /// Why the `Wake` event `e` woke its task; `waited_on_timer` says whether
    /// the woken task's last poll waited on a timer resource
    /// ([`TaskLife::waits_on_timer`](crate::TaskLife::waits_on_timer)).
    /// Events of other kinds give [`Unknown`](WakeReason::Unknown).
    #[inline]
    pub fn wake_reason(&self, e: &Event, waited_on_timer: bool) -> WakeCause {
        let DecodedEvent::Wake {
            task,
            by,
            self_wake,
            ..
        } = e.decode()
        else {
            return WakeCause {
                reason: WakeReason::Unknown,
                waker: None,
            };
        };
        let role = self
            .threads
            .get(e.thread as usize)
            .copied()
            .unwrap_or_default();
        let cause = |reason, waker| WakeCause { reason, waker };
        // A worker thread runs inside the runtime's own section for its
        // whole life, so a source naming the waker from the thread's
        // entered spans can name that task: it is the driver, not a task.
        let by = by.filter(|&b| role.section != Section::Runtime(b));
        if self_wake {
            return cause(WakeReason::Yield, Some(task));
        }
        if let Section::App(t) = role.section {
            return cause(WakeReason::Blocking, by.or((t != 0).then_some(t)));
        }
        if let Some(waker) = by.or((role.polling != 0).then_some(role.polling)) {
            let reason = if waker == task {
                WakeReason::Yield
            } else {
                WakeReason::Sync
            };
            return cause(reason, Some(waker));
        }
        if role.after_section != 0 {
            return cause(WakeReason::Blocking, Some(role.after_section));
        }
        if !role.runtime {
            return cause(WakeReason::Foreign, None);
        }
        if !role.parked && role.last_polled == task {
            return cause(WakeReason::Yield, Some(task));
        }
        if waited_on_timer {
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

    fn reason(roles: &ThreadRoles, e: &Event) -> WakeReason {
        roles.wake_reason(e, false).reason
    }

    #[test]
    fn a_wake_inside_another_tasks_poll_is_sync_and_names_it() {
        let mut r = ThreadRoles::default();
        r.observe(&ev(EventKind::PollStart, 0, 5), |_| false);
        let c = r.wake_reason(&wake(0, 9, 5), false);
        assert_eq!(
            c,
            WakeCause {
                reason: WakeReason::Sync,
                waker: Some(5)
            }
        );
        // The source did not name the waker, the thread's open poll does.
        assert_eq!(r.wake_reason(&wake(0, 9, 0), false).waker, Some(5));
    }

    #[test]
    fn a_wake_by_itself_is_a_yield() {
        let r = ThreadRoles::default();
        let mut e = wake(0, 9, 9);
        assert_eq!(reason(&r, &e), WakeReason::Yield);
        e.arg = 0;
        e.flags |= flags::SELF_WAKE;
        assert_eq!(reason(&r, &e), WakeReason::Yield);
    }

    #[test]
    fn tokios_deferred_yield_is_told_from_the_driver() {
        let mut r = ThreadRoles::default();
        r.observe(&ev(EventKind::PollStart, 1, 9), |_| false);
        r.observe(&ev(EventKind::PollEnd, 1, 9), |_| false);
        assert_eq!(reason(&r, &wake(1, 9, 0)), WakeReason::Yield);
        // Another task's wake there is the driver's.
        assert_eq!(reason(&r, &wake(1, 8, 0)), WakeReason::Io);
        // Once parked, the driver's too.
        r.observe(&ev(EventKind::Park, 1, 0), |_| false);
        assert_eq!(reason(&r, &wake(1, 9, 0)), WakeReason::Io);
        assert_eq!(
            r.wake_reason(&wake(1, 9, 0), true).reason,
            WakeReason::Timer
        );
        r.observe(&ev(EventKind::Unpark, 1, 0), |_| false);
        assert_eq!(reason(&r, &wake(1, 9, 0)), WakeReason::Io);
    }

    #[test]
    fn blocking_sections_of_the_app_and_of_the_runtime() {
        let mut r = ThreadRoles::default();
        let mut start = ev(EventKind::BlockingStart, 3, 40);
        start.flags = BlockingKind::SpawnBlocking as u8;
        start.aux = NO_WORKER;
        r.observe(&start, |_| false);
        assert_eq!(
            r.wake_reason(&wake(3, 9, 0), false),
            WakeCause {
                reason: WakeReason::Blocking,
                waker: Some(40)
            }
        );
        r.observe(&ev(EventKind::BlockingEnd, 3, 40), |_| false);
        // (The JoinHandle wake right after the section: see below.)
        r.observe(&ev(EventKind::Park, 3, 0), |_| false);
        r.observe(&ev(EventKind::Unpark, 3, 0), |_| false);
        assert_eq!(reason(&r, &wake(3, 9, 0)), WakeReason::Io);
        // Tokio's worker thread runs inside the runtime's own section: its
        // wakes outside polls are the driver's, not blocking.
        let mut worker = ev(EventKind::BlockingStart, 4, 41);
        worker.flags = BlockingKind::SpawnBlocking as u8;
        r.observe(&worker, |t| t == 41);
        assert!(r.in_runtime_section(4));
        assert_eq!(reason(&r, &wake(4, 9, 0)), WakeReason::Io);
        // Even when the source names that section's task as the waker
        // (Tokio's worker span is entered around the whole worker).
        assert_eq!(
            r.wake_reason(&wake(4, 9, 41), false),
            WakeCause {
                reason: WakeReason::Io,
                waker: None
            }
        );
        assert_eq!(
            r.wake_reason(&wake(4, 9, 41), true).reason,
            WakeReason::Timer
        );
        // block_in_place is the application's.
        let mut bip = ev(EventKind::BlockingStart, 5, 0);
        bip.flags = BlockingKind::BlockInPlace as u8;
        r.observe(&bip, |_| true);
        assert_eq!(
            r.wake_reason(&wake(5, 9, 0), false),
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
        assert_eq!(r.wake_reason(&wake(3, 9, 0), false), join);
        // Until the thread starts another section: then that one's.
        section(&mut r, 41);
        assert_eq!(r.wake_reason(&wake(3, 9, 0), false).waker, Some(41));
        // A runtime section forgets it.
        let mut worker = ev(EventKind::BlockingStart, 3, 50);
        worker.flags = BlockingKind::SpawnBlocking as u8;
        r.observe(&worker, |_| true);
        r.observe(&ev(EventKind::BlockingEnd, 3, 50), |_| true);
        assert_eq!(reason(&r, &wake(3, 9, 0)), WakeReason::Io);
        // So does a poll on a worker: its wakes outside polls are the driver's.
        let mut r = ThreadRoles::default();
        section(&mut r, 40);
        r.observe(&ev(EventKind::PollStart, 3, 7), |_| false);
        r.observe(&ev(EventKind::PollEnd, 3, 7), |_| false);
        assert_eq!(reason(&r, &wake(3, 9, 0)), WakeReason::Io);
    }

    #[test]
    fn a_thread_outside_the_runtime_is_foreign() {
        let r = ThreadRoles::default();
        assert_eq!(reason(&r, &wake(7, 9, 0)), WakeReason::Foreign);
        assert_eq!(
            r.wake_reason(&ev(EventKind::PollEnd, 7, 9), false).reason,
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
