//! [`TaskLife`]: the per-task phase state and its transitions, and the
//! slow-poll rule.

use std::time::Duration;

use super::wake_reason::TurnMark;
use crate::record::config::RecorderConfig;

/// Where a live task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TaskPhase {
    /// Spawned or woken, not yet polled.
    Runnable,
    /// Being polled.
    Polling,
    /// Polled, waiting to be woken.
    Idle,
}

/// The one slow-poll rule: a poll is slow when it lasts longer than the
/// recorder's [`RecorderConfig::slow_poll_threshold`].
///
/// ```
/// use taskline_core::{RecorderConfig, SlowPollThreshold};
/// let slow = SlowPollThreshold::of(&RecorderConfig::default()); // 10 ms
/// assert!(!slow.is_slow(10_000_000));
/// assert!(slow.is_slow(10_000_001));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowPollThreshold {
    threshold_ns: u64,
}

impl SlowPollThreshold {
    /// The threshold of `config`.
    pub fn of(config: &RecorderConfig) -> Self {
        Self::new(config.slow_poll_threshold)
    }

    /// A threshold of `d` (saturating at `u64::MAX` ns).
    pub fn new(d: Duration) -> Self {
        SlowPollThreshold {
            threshold_ns: u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// The threshold in nanoseconds.
    pub fn as_ns(self) -> u64 {
        self.threshold_ns
    }

    /// Whether a poll of `duration_ns` is slow: longer than the threshold.
    #[inline]
    pub fn is_slow(self, duration_ns: u64) -> bool {
        duration_ns > self.threshold_ns
    }
}

const POLLED: u8 = 1;
const WOKEN_IN_POLL: u8 = 2;
const WAITS_ON_TIMER: u8 = 4;

/// One task's phase, since when it is in it, whether it was polled before
/// or woken during its current poll, and where its last poll ended (for
/// the wake-reason rule). 16 bytes, `Copy`: consumers store it in their
/// own tables and apply the transitions to it.
///
/// ```
/// use taskline_core::{TaskLife, TaskPhase, Woken};
/// let mut t = TaskLife::spawned(100);
/// let started = t.poll_start(150, None);
/// assert_eq!(started.scheduled_ns, Some(50));
/// assert_eq!(started.first_poll_delay_ns, Some(50));
/// assert_eq!(t.poll_end(180).open_ns, Some(30));
/// assert_eq!(t.phase(), TaskPhase::Idle);
/// assert_eq!(t.wake(200), Woken::Idled { idle_ns: 20 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct TaskLife {
    since: u64,
    phase: TaskPhase,
    flags: u8,
    last_poll: TurnMark,
}

/// What a `PollStart` ended ([`TaskLife::poll_start`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollStarted {
    /// Scheduling delay: Tokio's schedule latency when known, else the
    /// runnable time; for a task that was idle (no wake seen), Tokio's
    /// latency only.
    pub scheduled_ns: Option<u64>,
    /// Idle time ended by this poll (a task idle without a wake seen: up to
    /// when Tokio scheduled it, or to this poll without a latency).
    pub idle_ns: Option<u64>,
    /// Spawn to first poll, for the task's first poll.
    pub first_poll_delay_ns: Option<u64>,
    /// The task was runnable (it leaves the run queue).
    pub was_runnable: bool,
}

/// What a `PollEnd` ended ([`TaskLife::poll_end`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollEnded {
    /// How long the task was polling, when it was (consumers prefer the
    /// thread's own `PollStart`, see [`TaskTracker`](super::TaskTracker)).
    pub open_ns: Option<u64>,
    /// Woken during the poll: runnable again from now.
    pub rewoken: bool,
}

/// What a `Wake` did ([`TaskLife::wake`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// An idle task became runnable after `idle_ns`.
    Idled {
        /// The idle time it ended.
        idle_ns: u64,
    },
    /// Woken while being polled: runnable from the poll's end.
    DuringPoll,
    /// Already runnable: nothing changes.
    AlreadyRunnable,
}

impl Woken {
    /// The idle time the wake ended, if any.
    #[inline]
    pub fn idle_ns(self) -> Option<u64> {
        match self {
            Woken::Idled { idle_ns } => Some(idle_ns),
            _ => None,
        }
    }
}

impl TaskLife {
    /// A task spawned at `at`: runnable, never polled.
    #[inline]
    pub const fn spawned(at: u64) -> Self {
        TaskLife {
            since: at,
            phase: TaskPhase::Runnable,
            flags: 0,
            last_poll: TurnMark::NONE,
        }
    }

    /// A task in its first poll since `start` (nothing else seen of it
    /// since its spawn): the state [`spawned`](Self::spawned) +
    /// [`poll_start`](Self::poll_start) leave.
    #[inline]
    pub const fn in_first_poll(start: u64) -> Self {
        TaskLife {
            since: start,
            phase: TaskPhase::Polling,
            flags: POLLED,
            last_poll: TurnMark::NONE,
        }
    }

    /// The current phase.
    #[inline]
    pub fn phase(&self) -> TaskPhase {
        self.phase
    }

    /// When the task entered its phase (ns).
    #[inline]
    pub fn since(&self) -> u64 {
        self.since
    }

    /// Whether it was polled at least once.
    #[inline]
    pub fn polled(&self) -> bool {
        self.flags & POLLED != 0
    }

    /// A poll starts at `ts`; `latency_ns` is Tokio's schedule latency if
    /// the `PollStart` carries one.
    #[inline]
    pub fn poll_start(&mut self, ts: u64, latency_ns: Option<u64>) -> PollStarted {
        let mut out = PollStarted::default();
        match self.phase {
            TaskPhase::Runnable => {
                out.was_runnable = true;
                let since = ts.saturating_sub(self.since);
                out.scheduled_ns = Some(latency_ns.unwrap_or(since));
                if self.flags & POLLED == 0 {
                    out.first_poll_delay_ns = Some(since);
                }
            }
            TaskPhase::Idle => {
                // No wake seen (hooks only): Tokio's latency says when it was scheduled.
                let scheduled_at = latency_ns.map_or(ts, |l| ts.saturating_sub(l));
                out.idle_ns = Some(scheduled_at.saturating_sub(self.since));
                out.scheduled_ns = latency_ns;
            }
            TaskPhase::Polling => {}
        }
        self.flags = (self.flags | POLLED) & !WAITS_ON_TIMER;
        self.phase = TaskPhase::Polling;
        self.since = ts;
        out
    }

    /// A poll of the task ends at `ts`.
    #[inline]
    pub fn poll_end(&mut self, ts: u64) -> PollEnded {
        if self.phase != TaskPhase::Polling {
            return PollEnded::default();
        }
        let rewoken = self.flags & WOKEN_IN_POLL != 0;
        let open_ns = ts.saturating_sub(self.since);
        self.phase = if rewoken {
            TaskPhase::Runnable
        } else {
            TaskPhase::Idle
        };
        self.flags &= !WOKEN_IN_POLL;
        self.since = ts;
        PollEnded {
            open_ns: Some(open_ns),
            rewoken,
        }
    }

    /// The task, in its current poll, waits on a resource: a timer when
    /// `timer` ([`is_timer_resource`](crate::is_timer_resource)). The last
    /// wait of a poll counts; the next poll forgets it.
    ///
    /// ```
    /// use taskline_core::TaskLife;
    /// let mut t = TaskLife::in_first_poll(0);
    /// t.resource_wait(true);
    /// t.poll_end(5);
    /// assert!(t.waits_on_timer());
    /// t.poll_start(9, None);
    /// assert!(!t.waits_on_timer());
    /// ```
    #[inline]
    pub fn resource_wait(&mut self, timer: bool) {
        if timer {
            self.flags |= WAITS_ON_TIMER;
        } else {
            self.flags &= !WAITS_ON_TIMER;
        }
    }

    /// Its last poll ended on the thread and in the driver turn `mark`
    /// says ([`ThreadRoles::turn_mark`](crate::ThreadRoles::turn_mark)
    /// at the `PollEnd`): consumers set it with every `poll_end`.
    #[inline]
    pub fn set_last_poll(&mut self, mark: TurnMark) {
        self.last_poll = mark;
    }

    /// Where its last poll ended ([`set_last_poll`](Self::set_last_poll)).
    #[inline]
    pub fn last_poll(&self) -> TurnMark {
        self.last_poll
    }

    /// Whether the task's last poll waited on a timer (for
    /// [`ThreadRoles::wake_reason`](crate::ThreadRoles::wake_reason)).
    #[inline]
    pub fn waits_on_timer(&self) -> bool {
        self.flags & WAITS_ON_TIMER != 0
    }

    /// The task is woken at `ts`.
    #[inline]
    pub fn wake(&mut self, ts: u64) -> Woken {
        match self.phase {
            TaskPhase::Idle => {
                let idle_ns = ts.saturating_sub(self.since);
                self.since = ts;
                self.phase = TaskPhase::Runnable;
                Woken::Idled { idle_ns }
            }
            TaskPhase::Polling => {
                self.flags |= WOKEN_IN_POLL;
                Woken::DuringPoll
            }
            TaskPhase::Runnable => Woken::AlreadyRunnable,
        }
    }
}

const _: () = assert!(std::mem::size_of::<TaskLife>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woken_during_a_poll_is_runnable_from_its_end() {
        let mut t = TaskLife::spawned(0);
        t.poll_start(10, None);
        assert_eq!(t.wake(15), Woken::DuringPoll);
        let end = t.poll_end(20);
        assert_eq!(
            end,
            PollEnded {
                open_ns: Some(10),
                rewoken: true
            }
        );
        assert_eq!((t.phase(), t.since()), (TaskPhase::Runnable, 20));
        let s = t.poll_start(26, None);
        assert_eq!(s.scheduled_ns, Some(6));
        assert_eq!(s.first_poll_delay_ns, None);
    }

    #[test]
    fn idle_without_a_wake_ends_where_tokio_scheduled_it() {
        let mut t = TaskLife::in_first_poll(0);
        t.poll_end(10);
        let s = t.poll_start(100, Some(30));
        assert_eq!(
            (s.idle_ns, s.scheduled_ns, s.was_runnable),
            (Some(60), Some(30), false)
        );
        let mut u = TaskLife::in_first_poll(0);
        u.poll_end(10);
        assert_eq!(u.poll_start(100, None).idle_ns, Some(90));
    }

    #[test]
    fn a_poll_end_outside_a_poll_changes_nothing() {
        let mut t = TaskLife::spawned(5);
        assert_eq!(t.poll_end(9), PollEnded::default());
        assert_eq!(t, TaskLife::spawned(5));
    }

    #[test]
    fn slow_means_longer_than_the_threshold() {
        let slow = SlowPollThreshold::new(Duration::from_nanos(100));
        assert!(!slow.is_slow(99));
        assert!(!slow.is_slow(100));
        assert!(slow.is_slow(101));
        assert!(!SlowPollThreshold::new(Duration::MAX).is_slow(u64::MAX));
    }
}
