//! [`Snapshot`]: the owned copy of everything the [`Aggregator`](super::Aggregator)
//! knows, and the statistics types it is made of.

use hdrhistogram::Histogram;

use crate::event::TaskKind;
use crate::lifecycle::{IdleByReason, WakeReason};
use crate::record::stats::RecorderStats;

/// Percentiles of one histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramSummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value (ns, 0 when empty).
    pub min: u64,
    /// Median (ns).
    pub p50: u64,
    /// 90th percentile (ns).
    pub p90: u64,
    /// 99th percentile (ns).
    pub p99: u64,
    /// Largest value (ns, at the histogram's precision).
    pub max: u64,
}

impl HistogramSummary {
    pub(super) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        HistogramSummary {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

use crate::lifecycle::TaskPhase;

/// Statistics of one live, tracked task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStats {
    /// Tokio task id.
    pub id: u64,
    /// Spawn site id (see [`Registry::site`](crate::Registry::site)).
    pub site: u32,
    /// Task name, if given with `tokio::task::Builder::name`.
    pub name: Option<String>,
    /// Where the task is now.
    pub state: TaskPhase,
    /// Times the task was polled.
    pub polls: u64,
    /// Total time being polled (ns): how much worker time the task used.
    pub busy_ns: u64,
    /// Total time runnable but not polled (ns): time lost to scheduling.
    pub scheduled_ns: u64,
    /// Total time waiting to be woken (ns): time spent waiting on I/O, timers, locks...
    pub idle_ns: u64,
    /// `idle_ns` split by the [`WakeReason`] that ended each idle period,
    /// indexed by [`WakeReason::index`].
    ///
    /// ```
    /// # use taskline_core::{Aggregator, Event, EventKind, RecorderConfig, Registry, WakeReason, NO_VALUE};
    /// let mut ev = |kind, ts, task, thread: u16| { let mut e = Event::new(kind, ts, task); e.thread = thread; if kind == EventKind::PollStart { e.arg = NO_VALUE; } e };
    /// let mut agg = Aggregator::new(&RecorderConfig::default());
    /// let mut wake = ev(EventKind::Wake, 50, 1, 1);
    /// wake.arg = 2; // woken from inside task 2's poll, on thread 1
    /// agg.feed(&[ev(EventKind::Spawn, 0, 1, 0), ev(EventKind::Spawn, 0, 2, 0),
    ///     ev(EventKind::PollStart, 10, 1, 0), ev(EventKind::PollEnd, 20, 1, 0),
    ///     ev(EventKind::PollStart, 40, 2, 1), wake]);
    /// let snap = agg.snapshot(&Registry::new());
    /// let task = snap.tasks.iter().find(|t| t.id == 1).unwrap();
    /// assert_eq!(task.idle_ns_by_reason[WakeReason::Sync.index()], 30);
    /// assert_eq!((task.last_wake_reason, task.last_waker), (Some(WakeReason::Sync), Some(2)));
    /// ```
    pub idle_ns_by_reason: [u64; WakeReason::COUNT],
    /// Why the task's last idle period ended, `None` before the first.
    pub last_wake_reason: Option<WakeReason>,
    /// The task that ended its last idle period (a `sync` or `blocking`
    /// wake), when known.
    pub last_waker: Option<u64>,
    /// Times the task was woken (needs the tracing layer).
    pub wakes: u64,
    /// Times the task woke itself (e.g. `yield_now`, budget exhaustion).
    pub self_wakes: u64,
    /// Polls longer than the slow-poll threshold.
    pub slow_polls: u64,
    /// Resource kind the task last waited on (e.g. `Semaphore`), from the layer.
    pub last_resource: Option<String>,
}

/// Statistics of one spawn site, over every task spawned there (live and terminated).
#[derive(Clone, Debug, PartialEq)]
pub struct SiteStats {
    /// Site id (see [`Registry::site`](crate::Registry::site)); `Registry::OVERFLOW` for unknown.
    pub id: u32,
    /// Display name: the first task name seen at the site, else `file:line:col`.
    pub name: String,
    /// `file:line:col`.
    pub location: String,
    /// What kind of task is spawned here.
    pub kind: TaskKind,
    /// Tasks spawned here.
    pub spawned: u64,
    /// Tracked tasks spawned here that terminated.
    pub terminated: u64,
    /// Tracked tasks spawned here that are alive.
    pub alive: u64,
    /// Tasks spawned while `max_tracked_tasks` were live: counted in
    /// `spawned`, nowhere else.
    pub untracked: u64,
    /// Polls of tracked tasks.
    pub polls: u64,
    /// Total poll time (ns).
    pub busy_ns: u64,
    /// Total scheduling delay, runnable -> polled (ns).
    pub scheduled_ns: u64,
    /// Total idle time, poll end -> wake (ns).
    pub idle_ns: u64,
    /// Sum of spawn -> first poll delays (ns); divide by `first_polls` for the mean.
    pub first_poll_delay_ns: u64,
    /// Tasks polled at least once.
    pub first_polls: u64,
    /// Wakes of tasks spawned here.
    pub wakes: u64,
    /// Self-wakes of tasks spawned here.
    pub self_wakes: u64,
    /// Polls longer than the slow-poll threshold.
    pub slow_polls: u64,
    /// Waits on resources by resource kind, sorted by kind id.
    pub resource_waits: Vec<(String, u64)>,
    /// Idle periods and idle time of this site's tasks by the
    /// [`WakeReason`] that ended them (see the reason's docs for the rule).
    pub idle_by_reason: IdleByReason,
    /// `sync` wakes of this site's tasks by the waking task's site name,
    /// most first (at most [`MAX_WAKER_SITES`](crate::MAX_WAKER_SITES)).
    pub woken_by: Vec<(String, u64)>,
    /// `sync` wakes from sites past the first
    /// [`MAX_WAKER_SITES`](crate::MAX_WAKER_SITES).
    pub woken_by_other: u64,
    /// Poll durations (only for the first [`MAX_SITE_HISTOGRAMS`](crate::MAX_SITE_HISTOGRAMS) sites; 2 significant digits).
    pub poll_duration: Option<HistogramSummary>,
    /// Scheduling delays (as `poll_duration`).
    pub schedule_delay: Option<HistogramSummary>,
    /// Idle times (as `poll_duration`).
    pub idle_time: Option<HistogramSummary>,
}

/// Statistics of one runtime worker thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStats {
    /// The recorder's thread number.
    pub thread: u16,
    /// OS thread name.
    pub thread_name: String,
    /// Tokio worker index (per runtime: two runtimes both have a worker 0).
    pub worker: u32,
    /// Polls run on this worker.
    pub polls: u64,
    /// Time spent polling (ns).
    pub busy_ns: u64,
    /// Times the worker parked (went idle).
    pub parks: u64,
    /// Time parked (ns).
    pub parked_ns: u64,
}

/// Everything the aggregator knows, as plain owned data. `Display` prints
/// the text report.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Events the aggregator processed (a termination the runtime hooks fold
    /// into a `PollEnd` arrives as two: `Terminate` and `PollEnd`).
    pub events: u64,
    /// The recorder's counters when taken with `Recorder::snapshot`, `None`
    /// for a standalone aggregator.
    pub recorder: Option<RecorderStats>,
    /// Polls longer than this (ns) are slow.
    pub slow_poll_threshold_ns: u64,
    /// Tasks spawned (each task once, whichever source reported it).
    pub spawned: u64,
    /// Tracked tasks that terminated.
    pub terminated: u64,
    /// Tracked tasks alive now.
    pub alive: u64,
    /// Tasks not tracked individually because `max_tracked_tasks` were live.
    pub untracked: u64,
    /// Tracked tasks runnable now (woken or spawned, not yet polled).
    pub runnable: u64,
    /// Most tracked tasks runnable at once.
    pub max_runnable: u64,
    /// Polls started (all tasks, including untracked ones and `block_on`).
    pub polls: u64,
    /// Total poll time (ns) of polls whose start and end were seen.
    pub busy_ns: u64,
    /// Polls longer than `slow_poll_threshold_ns`.
    pub slow_polls: u64,
    /// Wakes (needs the tracing layer).
    pub wakes: u64,
    /// Self-wakes.
    pub self_wakes: u64,
    /// Sum of spawn -> first poll delays (ns) of tracked tasks.
    pub first_poll_delay_ns: u64,
    /// Tracked tasks polled at least once.
    pub first_polls: u64,
    /// The application's blocking sections (`spawn_blocking` runs,
    /// `block_in_place`) completed.
    pub blocking_sections: u64,
    /// Time in the application's blocking sections (ns).
    pub blocking_ns: u64,
    /// The runtime's own blocking sections (Tokio starts its worker threads
    /// with a `spawn_blocking` inside Tokio,
    /// [`Site::is_runtime_internal`](crate::Site::is_runtime_internal)),
    /// completed: not the application's blocking.
    pub runtime_sections: u64,
    /// Time in the runtime's own blocking sections (ns): about the
    /// lifetime of its worker threads.
    pub runtime_section_ns: u64,
    /// Idle periods and idle time of tracked tasks by the [`WakeReason`]
    /// that ended them.
    pub idle_by_reason: IdleByReason,
    /// Poll durations (ns, 2 significant digits: 1% resolution).
    pub poll_duration: HistogramSummary,
    /// Scheduling delays, runnable -> polled (ns, 2 significant digits: 1% resolution).
    pub schedule_delay: HistogramSummary,
    /// Idle times, poll end -> wake (ns, 2 significant digits: 1% resolution).
    pub idle_time: HistogramSummary,
    /// Per spawn site, sorted by site id.
    pub sites: Vec<SiteStats>,
    /// Per worker thread, sorted by thread number.
    pub workers: Vec<WorkerStats>,
    /// Live tracked tasks, sorted by id.
    pub tasks: Vec<TaskStats>,
    /// Application regions (`tracing` spans recorded with
    /// `RecorderConfig::record_spans`, futures wrapped by `Recorder::region`)
    /// per name, sorted by name id (see [`RegionTable`](crate::RegionTable)).
    pub regions: Vec<crate::aggregate::RegionStats>,
}
