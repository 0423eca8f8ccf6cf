//! [`TaskTracker`]: the per-task and per-thread bookkeeping of the task
//! lifecycle over an event stream, with a consumer-chosen value per task.

use crate::IdMap;
use crate::event::{DecodedEvent, Event};

use super::phase::{PollStarted, SlowPollThreshold, TaskLife, Woken};
use super::wake_reason::{ThreadRole, WakeCause};
use crate::record::registry::Registry;

/// What the lifecycle's rules need to know about interned names: whether a
/// resource kind is a timer ([`is_timer_resource`](crate::is_timer_resource))
/// and whether a spawn site is the runtime's own
/// ([`Site::is_runtime_internal`](crate::Site::is_runtime_internal)).
/// Implemented by the live [`Registry`] and by a trace reader's tables.
pub trait NameLookup {
    /// Whether the resource kind with string id `resource` is a timer.
    fn is_timer_resource(&self, resource: u32) -> bool;
    /// Whether spawn site `site` is inside the runtime.
    fn is_runtime_site(&self, site: u32) -> bool;
}

impl NameLookup for Registry {
    fn is_timer_resource(&self, resource: u32) -> bool {
        self.string(resource)
            .is_some_and(|k| super::wake_reason::is_timer_resource(&k))
    }

    fn is_runtime_site(&self, site: u32) -> bool {
        self.site(site).is_some_and(|s| s.is_runtime_internal())
    }
}

/// What one event did to a task (see [`TaskTracker::apply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition<V> {
    /// A task's first `Spawn` (a second one of a live task is
    /// [`Other`](Transition::Other)).
    Spawned {
        /// Task id.
        task: u64,
        /// Spawn site id.
        site: u32,
        /// The value made for it (kept only when `tracked`).
        value: V,
        /// False past the tracker's limit of live tasks: counted, not followed.
        tracked: bool,
    },
    /// A thread started polling a task.
    PollStarted {
        /// Task id.
        task: u64,
        /// Tokio's schedule latency, when the event carries one.
        latency_ns: Option<u64>,
        /// What the start ended, `None` for a task not tracked.
        started: Option<PollStarted>,
        /// The task's value, `None` for a task not tracked.
        value: Option<V>,
    },
    /// A poll ended: its duration is known.
    Polled {
        /// Task id.
        task: u64,
        /// Runtime worker index of the `PollEnd`.
        worker: Option<u32>,
        /// When the poll started.
        start_ns: u64,
        /// How long it ran.
        duration_ns: u64,
        /// Longer than the slow-poll threshold ([`SlowPollThreshold::is_slow`]).
        slow: bool,
        /// Woken during the poll: runnable again.
        rewoken: bool,
        /// The task's value, from the poll's start (so a task that
        /// terminated inside its last poll still has it), `None` for a task
        /// not tracked.
        value: Option<V>,
    },
    /// A task was woken.
    Woken {
        /// The woken task.
        task: u64,
        /// The waking task, `None` from outside a task.
        by: Option<u64>,
        /// The task woke itself.
        self_wake: bool,
        /// Why ([`ThreadRoles::wake_reason`](crate::ThreadRoles::wake_reason)): the reason the idle time
        /// in `woken` (if any) ended for.
        cause: WakeCause,
        /// What the wake did, `None` for a task not tracked.
        woken: Option<Woken>,
        /// The task's value, `None` for a task not tracked.
        value: Option<V>,
    },
    /// A tracked task terminated; its state is gone (a poll it is still in
    /// ends as [`Polled`](Transition::Polled) with its value).
    Terminated {
        /// Task id.
        task: u64,
        /// Its value.
        value: V,
    },
    /// Anything else: events that change no phase (names, resource waits,
    /// blocking sections, workers, counters), a second `Spawn`, a `PollEnd`
    /// without a poll open, a `Terminate` of a task not tracked.
    Other(DecodedEvent),
}

#[derive(Clone, Copy, Debug)]
struct Tracked<V> {
    life: TaskLife,
    site: u32,
    value: V,
}

/// One recording thread: its role for the wake-reason rule (which also
/// holds the task of its open poll, [`ThreadRole::polling`]) and that
/// poll's start and value.
#[derive(Clone, Copy, Debug)]
struct ThreadState<V> {
    role: ThreadRole,
    start: u64,
    value: Option<V>,
}

/// The task lifecycle over a stream of events: each task's [`TaskLife`]
/// and a value `V` of the consumer's (e.g. the spawn site, or the series
/// its metrics go to), each thread's open poll, and the slow-poll rule.
///
/// ```
/// use taskline_core::{Event, EventKind, SlowPollThreshold, TaskTracker, Transition};
/// use std::time::Duration;
///
/// let mut t: TaskTracker<u32> =
///     TaskTracker::new(usize::MAX, SlowPollThreshold::new(Duration::from_nanos(5)));
/// let mut spawn = Event::new(EventKind::Spawn, 0, 1);
/// spawn.aux = 7; // site
/// let mut start = Event::new(EventKind::PollStart, 10, 1);
/// start.arg = taskline_core::NO_VALUE;
/// let names = taskline_core::Registry::new();
/// t.apply(&spawn, &names, |site| site);
/// t.apply(&start, &names, |site| site);
/// // Tokio terminates a task inside its last poll: the poll keeps its site.
/// assert!(matches!(t.apply(&Event::new(EventKind::Terminate, 19, 1), &names, |s| s),
///     Transition::Terminated { value: 7, .. }));
/// assert!(matches!(t.apply(&Event::new(EventKind::PollEnd, 20, 1), &names, |s| s),
///     Transition::Polled { duration_ns: 10, slow: true, value: Some(7), .. }));
/// ```
#[derive(Debug)]
pub struct TaskTracker<V> {
    tasks: IdMap<u64, Tracked<V>>,
    threads: Vec<ThreadState<V>>,
    max_tasks: usize,
    slow: SlowPollThreshold,
}

impl<V: Copy> TaskTracker<V> {
    /// A tracker following at most `max_tasks` live tasks (`usize::MAX`:
    /// all of them) and classifying polls with `slow`.
    pub fn new(max_tasks: usize, slow: SlowPollThreshold) -> Self {
        TaskTracker {
            tasks: IdMap::default(),
            threads: Vec::new(),
            max_tasks,
            slow,
        }
    }

    /// Live tracked tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is tracked.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The slow-poll rule in use.
    pub fn slow_polls(&self) -> SlowPollThreshold {
        self.slow
    }

    /// The value of tracked task `task`.
    pub fn value_mut(&mut self, task: u64) -> Option<&mut V> {
        self.tasks.get_mut(&task).map(|t| &mut t.value)
    }

    /// Makes room in `threads` for thread index `i`.
    #[inline]
    fn grow(threads: &mut Vec<ThreadState<V>>, i: usize) {
        if threads.len() <= i {
            threads.resize(
                i + 1,
                ThreadState {
                    role: ThreadRole::default(),
                    start: 0,
                    value: None,
                },
            );
        }
    }

    /// The state of recording thread `thread`, made on first use.
    #[inline]
    fn thread_mut(&mut self, thread: u16) -> &mut ThreadState<V> {
        let i = thread as usize;
        Self::grow(&mut self.threads, i);
        &mut self.threads[i]
    }

    /// Applies one event; `new_value(site)` makes the value of a task at
    /// its first `Spawn`; `names` resolves resource kinds and sites for the
    /// wake-reason rule. An idle time ended by a `PollStart`
    /// ([`PollStarted::idle_ns`]) has no wake: its reason is
    /// [`Unknown`](crate::WakeReason::Unknown).
    #[inline]
    pub fn apply(
        &mut self,
        e: &Event,
        names: &impl NameLookup,
        new_value: impl FnOnce(u32) -> V,
    ) -> Transition<V> {
        let ts = e.ts_ns;
        let d = e.decode();
        // Each arm applies its kind's transition of the thread's role (what
        // `ThreadRole::observe` dispatches to) in the thread's own state.
        match d {
            DecodedEvent::Spawn { task, site, .. } => {
                if self.tasks.contains_key(&task) {
                    return Transition::Other(d);
                }
                let value = new_value(site);
                let tracked = self.tasks.len() < self.max_tasks;
                if tracked {
                    self.tasks.insert(
                        task,
                        Tracked {
                            life: TaskLife::spawned(ts),
                            site,
                            value,
                        },
                    );
                }
                Transition::Spawned {
                    task,
                    site,
                    value,
                    tracked,
                }
            }
            DecodedEvent::PollStart {
                task,
                latency_ns,
                worker,
            } => {
                let (started, value) = match self.tasks.get_mut(&task) {
                    Some(t) => (Some(t.life.poll_start(ts, latency_ns)), Some(t.value)),
                    None => (None, None),
                };
                let th = self.thread_mut(e.thread);
                th.role.poll_started(task, worker.is_some());
                th.start = ts;
                th.value = value;
                Transition::PollStarted {
                    task,
                    latency_ns,
                    started,
                    value,
                }
            }
            DecodedEvent::PollEnd { task, worker } => {
                let (open, mark) = match self.threads.get_mut(e.thread as usize) {
                    Some(o) => {
                        let open = (o.role.polling() == task && task != 0)
                            .then(|| (o.start, o.value.take()));
                        o.role.poll_ended(task);
                        (open, o.role.turn_mark(e.thread))
                    }
                    None => (None, ThreadRole::default().turn_mark(e.thread)),
                };
                let mut start = open.map(|(s, _)| s);
                let mut value = open.and_then(|(_, v)| v);
                let mut rewoken = false;
                if let Some(t) = self.tasks.get_mut(&task) {
                    let end = t.life.poll_end(ts);
                    t.life.set_last_poll(mark);
                    rewoken = end.rewoken;
                    if start.is_none() {
                        start = end.open_ns.map(|d| ts.saturating_sub(d));
                    }
                    value = value.or(Some(t.value));
                }
                let Some(start_ns) = start else {
                    return Transition::Other(d);
                };
                let duration_ns = ts.saturating_sub(start_ns);
                Transition::Polled {
                    task,
                    worker,
                    start_ns,
                    duration_ns,
                    slow: self.slow.is_slow(duration_ns),
                    rewoken,
                    value,
                }
            }
            DecodedEvent::Wake {
                task,
                by,
                self_wake,
                ..
            } => {
                self.thread_mut(e.thread).role.woken_here();
                let role = &self.threads[e.thread as usize].role;
                // The rule reads the task's last poll before the wake
                // changes its phase.
                let (cause, woken, value) = match self.tasks.get_mut(&task) {
                    Some(t) => {
                        let cause = role.wake_reason(e.thread, &d, Some(&t.life));
                        (cause, Some(t.life.wake(ts)), Some(t.value))
                    }
                    None => (role.wake_reason(e.thread, &d, None), None, None),
                };
                Transition::Woken {
                    task,
                    by,
                    self_wake,
                    cause,
                    woken,
                    value,
                }
            }
            DecodedEvent::Park { .. } => {
                self.thread_mut(e.thread).role.parked();
                Transition::Other(d)
            }
            DecodedEvent::BlockingStart { task, kind, .. } => {
                let tasks = &self.tasks;
                let i = e.thread as usize;
                Self::grow(&mut self.threads, i);
                self.threads[i].role.section_started(task, kind, |task| {
                    tasks
                        .get(&task)
                        .is_some_and(|t| names.is_runtime_site(t.site))
                });
                Transition::Other(d)
            }
            DecodedEvent::BlockingEnd { .. } => {
                self.thread_mut(e.thread).role.section_ended();
                Transition::Other(d)
            }
            DecodedEvent::ResourceWait { task, resource, .. } => {
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.life.resource_wait(names.is_timer_resource(resource));
                }
                Transition::Other(d)
            }
            DecodedEvent::Terminate { task } => match self.tasks.remove(&task) {
                Some(t) => Transition::Terminated {
                    task,
                    value: t.value,
                },
                None => Transition::Other(d),
            },
            _ => Transition::Other(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, NO_VALUE};
    use std::time::Duration;

    impl<V: Copy> TaskTracker<V> {
        fn apply_test(&mut self, e: &Event, v: impl FnOnce(u32) -> V) -> Transition<V> {
            self.apply(e, &Registry::new(), v)
        }
    }

    fn ev(kind: EventKind, ts: u64, task: u64, thread: u16) -> Event {
        let mut e = Event::new(kind, ts, task);
        e.thread = thread;
        if kind == EventKind::PollStart {
            e.arg = NO_VALUE;
        }
        e
    }

    #[test]
    fn past_its_limit_tasks_are_counted_not_followed() {
        let mut t: TaskTracker<u32> =
            TaskTracker::new(1, SlowPollThreshold::new(Duration::from_nanos(1)));
        let a = t.apply_test(&ev(EventKind::Spawn, 0, 1, 0), |_| 1);
        let b = t.apply_test(&ev(EventKind::Spawn, 0, 2, 0), |_| 2);
        assert!(matches!(a, Transition::Spawned { tracked: true, .. }));
        assert!(matches!(
            b,
            Transition::Spawned {
                tracked: false,
                value: 2,
                ..
            }
        ));
        // A second Spawn of a live task is nothing new.
        assert!(matches!(
            t.apply_test(&ev(EventKind::Spawn, 1, 1, 0), |_| 9),
            Transition::Other(_)
        ));
        t.apply_test(&ev(EventKind::PollStart, 5, 2, 1), |_| 0);
        let end = t.apply_test(&ev(EventKind::PollEnd, 8, 2, 1), |_| 0);
        assert!(matches!(
            end,
            Transition::Polled {
                duration_ns: 3,
                value: None,
                slow: true,
                ..
            }
        ));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_poll_end_on_another_thread_falls_back_to_the_task() {
        let mut t: TaskTracker<()> =
            TaskTracker::new(usize::MAX, SlowPollThreshold::new(Duration::from_nanos(10)));
        t.apply_test(&ev(EventKind::Spawn, 0, 1, 0), |_| ());
        t.apply_test(&ev(EventKind::PollStart, 5, 1, 0), |_| ());
        let end = t.apply_test(&ev(EventKind::PollEnd, 15, 1, 3), |_| ());
        assert!(matches!(
            end,
            Transition::Polled {
                start_ns: 5,
                duration_ns: 10,
                slow: false,
                ..
            }
        ));
        // Nothing open anymore.
        assert!(matches!(
            t.apply_test(&ev(EventKind::PollEnd, 16, 1, 0), |_| ()),
            Transition::Polled { .. }
        ));
        assert!(matches!(
            t.apply_test(&ev(EventKind::PollEnd, 17, 1, 0), |_| ()),
            Transition::Other(_)
        ));
    }

    #[test]
    fn wakes_carry_the_reason_of_the_one_rule() {
        use crate::lifecycle::WakeReason;
        let names = Registry::new();
        let sleep = names.intern("Sleep");
        let sem = names.intern("Semaphore");
        let mut t: TaskTracker<()> =
            TaskTracker::new(usize::MAX, SlowPollThreshold::new(Duration::from_secs(1)));
        let mut apply = |e: Event| t.apply(&e, &names, |_| ());
        let cause = |tr: Transition<()>| match tr {
            Transition::Woken { cause, woken, .. } => {
                (cause.reason, cause.waker, woken.and_then(|w| w.idle_ns()))
            }
            other => panic!("not a wake: {other:?}"),
        };
        apply(ev(EventKind::Spawn, 0, 1, 0));
        apply(ev(EventKind::Spawn, 0, 2, 0));
        // Task 1 waits on a Sleep in its poll on worker thread 0.
        apply(ev(EventKind::PollStart, 1, 1, 0));
        let mut wait = ev(EventKind::ResourceWait, 2, 1, 0);
        wait.aux = sleep;
        apply(wait);
        apply(ev(EventKind::PollEnd, 3, 1, 0));
        apply(ev(EventKind::Park, 4, 0, 0));
        assert_eq!(
            cause(apply(ev(EventKind::Wake, 10, 1, 0))),
            (WakeReason::Timer, None, Some(7))
        );
        apply(ev(EventKind::Unpark, 11, 0, 0));
        // Its next poll waits on a semaphore that task 2 releases.
        apply(ev(EventKind::PollStart, 12, 1, 0));
        let mut wait = ev(EventKind::ResourceWait, 13, 1, 0);
        wait.aux = sem;
        apply(wait);
        apply(ev(EventKind::PollEnd, 14, 1, 0));
        apply(ev(EventKind::PollStart, 15, 2, 1));
        let mut w = ev(EventKind::Wake, 20, 1, 1);
        w.arg = 2;
        assert_eq!(cause(apply(w)), (WakeReason::Sync, Some(2), Some(6)));
    }
}
