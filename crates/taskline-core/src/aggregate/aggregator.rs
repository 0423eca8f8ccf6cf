//! [`Aggregator`]: the sink that folds the event stream into per task, per
//! spawn site and per worker statistics (see the folder's docs).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use hdrhistogram::Histogram;

use super::regions::{RegionLimits, RegionTable};
use super::snapshot::{HistogramSummary, SiteStats, Snapshot, TaskStats, WorkerStats};
use super::task_table::{Slot, TaskTable};
use super::unpolled::{Unpolled, UnpolledTable};
use crate::event::{DecodedEvent, Event, TaskKind};
use crate::lifecycle::{
    IdleByReason, NameLookup, SlowPollThreshold, TaskLife, TaskPhase, ThreadRole, WakeReason,
};
use crate::record::config::RecorderConfig;
use crate::record::registry::Registry;
use crate::record::sink::Sink;

/// Upper bound of the bytes one tracked task takes in the aggregator: a
/// slot of the task table (a 128-byte state, plus a 64-byte bucket line per
/// 7 slots: under 138 bytes), which has at most 4 slots per tracked task
/// (its buckets are the power of two at or above `2 * max_tracked_tasks`
/// slots), plus a presence count of under 16 bytes (a power of two at or
/// above 8 per tracked task), plus, for tasks whose bucket is full, an
/// overflow hash-map entry (~82 bytes), plus under two 64-byte buckets of
/// the table of never-polled tasks (the power of two at or above
/// `max_tracked_tasks`).
pub const TASK_STATE_BYTES_BOUND: usize = 784;

/// Spawn sites (by id) that get their own histograms; later sites have
/// counters only. Bounds histogram memory.
pub const MAX_SITE_HISTOGRAMS: usize = 64;

/// Largest value the histograms distinguish (1 hour, in ns); larger values saturate.
pub const HISTOGRAM_MAX_NS: u64 = 3_600_000_000_000;

/// Significant digits of every histogram (1% resolution). The process-wide
/// histograms are merged from the per-site ones when a snapshot is taken, so
/// each observation is recorded once, into a small (~36 KiB) histogram that
/// stays in cache, instead of twice (site and global, the global one at 3
/// digits spanning ~264 KiB): on a busy service the consumer thread spent
/// more time on those cache misses than on anything else.
const SITE_SIGFIG: u8 = 2;

fn new_hist(sigfig: u8) -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's accepted range.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, sigfig)
        .unwrap_or_else(|e| unreachable!("histogram bounds: {e}"))
}

fn hist_bytes(sigfig: u8) -> usize {
    new_hist(sigfig).distinct_values() * 8 + 256
}

/// Upper bound of the aggregator's memory that does not depend on the number
/// of tasks or sites: global and per-site histograms, per-thread state.
pub fn fixed_bytes_bound() -> usize {
    static B: OnceLock<usize> = OnceLock::new();
    *B.get_or_init(|| {
        // `rest`, the per-site histograms, and the merge scratch of a snapshot.
        (MAX_SITE_HISTOGRAMS + 2) * 3 * hist_bytes(SITE_SIGFIG)
            + 65536
                * (std::mem::size_of::<ThreadAcc>() + std::mem::size_of::<Option<WorkerAcc>>() + 64)
            + DENSE_SITES * std::mem::size_of::<Option<Box<SiteAcc>>>()
            + crate::aggregate::unpolled::MIN_BUCKETS * crate::aggregate::unpolled::BUCKET_BYTES
            + RegionLimits::default().bytes_bound()
    })
}

/// Upper bound of the bytes one spawn site's counters take (without histograms).
pub const SITE_BYTES_BOUND: usize = 512;

/// Site ids below this are found by indexing a `Vec` (the registry hands
/// out dense ids from 0); larger ones (e.g. `Registry::OVERFLOW`, or ids
/// from a hostile file) go to an ordered map.
const DENSE_SITES: usize = 65536;

/// Per-site accumulators by site id, iterated in id order.
#[derive(Default)]
struct Sites {
    dense: Vec<Option<Box<SiteAcc>>>,
    sparse: BTreeMap<u32, SiteAcc>,
}

impl Sites {
    fn len(&self) -> usize {
        self.dense.iter().flatten().count() + self.sparse.len()
    }

    #[inline]
    fn get_or_insert_with(&mut self, id: u32, new: impl FnOnce() -> SiteAcc) -> &mut SiteAcc {
        let i = id as usize;
        if i < DENSE_SITES {
            if self.dense.len() <= i {
                self.dense.resize_with(i + 1, || None);
            }
            self.dense[i].get_or_insert_with(|| Box::new(new()))
        } else {
            self.sparse.entry(id).or_insert_with(new)
        }
    }

    fn get(&self, id: u32) -> Option<&SiteAcc> {
        match self.dense.get(id as usize) {
            Some(s) => s.as_deref(),
            None => self.sparse.get(&id),
        }
    }

    /// Every site, in increasing id order.
    fn iter(&self) -> impl Iterator<Item = (u32, &SiteAcc)> {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, &**s.as_ref()?)));
        dense.chain(self.sparse.iter().map(|(&id, s)| (id, s)))
    }
}

/// Per live task: two cache lines, aligned to one. The first holds what
/// every poll and wake touch; the second the idle time by wake reason,
/// touched only by a wake that ends an idle period.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct TaskState {
    busy_ns: u64,
    sched_ns: u64,
    /// Phase and since when (the lifecycle's rules).
    life: TaskLife,
    polls: u32,
    wakes: u32,
    slow_polls: u32,
    site: u32,
    name: u32,
    resource: u32,
    self_wakes: u16,
    /// `WakeReason` of the last wake that ended an idle period, as u8;
    /// `NO_REASON` before the first.
    last_reason: u8,
    /// Idle time (ns) by `WakeReason::index`: the second cache line.
    idle_ns: [u64; WakeReason::COUNT],
    /// Task that woke it last (`Sync`/`Blocking` wakes), 0 when none.
    last_waker: u64,
}

/// [`TaskState::last_reason`] before any idle period ended.
const NO_REASON: u8 = u8::MAX;

const _: () = assert!(std::mem::size_of::<TaskState>() == 128);
const _: () = assert!(std::mem::offset_of!(TaskState, idle_ns) == 64);

impl Default for TaskState {
    fn default() -> Self {
        TaskState {
            last_waker: 0,
            busy_ns: 0,
            sched_ns: 0,
            life: TaskLife::spawned(0),
            polls: 0,
            wakes: 0,
            slow_polls: 0,
            site: 0,
            name: Registry::OVERFLOW,
            resource: Registry::OVERFLOW,
            self_wakes: 0,
            last_reason: NO_REASON,
            idle_ns: [0; WakeReason::COUNT],
        }
    }
}

struct Hists {
    poll: Histogram<u64>,
    sched: Histogram<u64>,
    idle: Histogram<u64>,
}

impl Hists {
    fn new(sigfig: u8) -> Self {
        Hists {
            poll: new_hist(sigfig),
            sched: new_hist(sigfig),
            idle: new_hist(sigfig),
        }
    }
}

#[derive(Default)]
struct SiteAcc {
    spawned: u64,
    terminated: u64,
    alive: u64,
    untracked: u64,
    polls: u64,
    busy_ns: u64,
    sched_ns: u64,
    first_poll_ns: u64,
    first_polls: u64,
    wakes: u64,
    self_wakes: u64,
    slow_polls: u64,
    name: Option<u32>,
    resources: BTreeMap<u32, u64>,
    idle_by_reason: IdleByReason,
    /// Sync wakes by the waking task's site: at most [`MAX_WAKER_SITES`].
    woken_by: Vec<(u32, u64)>,
    /// Sync wakes from sites past [`MAX_WAKER_SITES`].
    woken_by_other: u64,
    hists: Option<Box<Hists>>,
}

/// Waking sites each site keeps a count for (see [`SiteStats::woken_by`]).
pub const MAX_WAKER_SITES: usize = 8;

impl SiteAcc {
    /// Counts a wake of one of this site's tasks by a task of `waker`.
    #[inline]
    fn woken_by(&mut self, waker: u32) {
        if let Some(w) = self.woken_by.iter_mut().find(|w| w.0 == waker) {
            w.1 += 1;
        } else if self.woken_by.len() < MAX_WAKER_SITES {
            self.woken_by.push((waker, 1));
        } else {
            self.woken_by_other += 1;
        }
    }
}

#[derive(Clone, Copy, Default)]
struct ThreadAcc {
    poll_start: u64,
    /// Site of the task being polled (tokio reports a task's termination
    /// before the end of its last poll, so the task may be gone by then).
    poll_site: Option<u32>,
    /// `Some(scheduled time)` while the task being polled
    /// ([`ThreadAcc::poll_task`]) is in its first poll and
    /// has no task-table entry: the poll's thread holds its state (site,
    /// start) until the poll ends, which for most short tasks is also their
    /// termination. Any other event of that task moves it to the table.
    fresh: Option<u64>,
    blocking_start: Option<u64>,
    /// What the thread is doing: the wake-reason rule's input, and the
    /// task being polled (one copy of it, updated by the role's
    /// transitions).
    role: ThreadRole,
}

impl ThreadAcc {
    /// The task this thread is polling, 0 when none.
    #[inline]
    fn poll_task(&self) -> u64 {
        self.role.polling()
    }
}

#[derive(Clone, Copy, Default)]
struct WorkerAcc {
    worker: u32,
    polls: u64,
    busy_ns: u64,
    parks: u64,
    parked_ns: u64,
    park_start: Option<u64>,
}

/// Aggregates an event stream into a [`Snapshot`].
pub struct Aggregator {
    slow: SlowPollThreshold,
    max_tasks: usize,
    events: u64,
    /// Tracked tasks that were polled (or did not fit in `unpolled`).
    tasks: TaskTable<TaskState>,
    /// Tracked tasks not polled yet.
    unpolled: UnpolledTable,
    /// Threads whose `ThreadAcc::fresh` is set.
    in_flight: usize,
    sites: Sites,
    threads: Vec<ThreadAcc>,
    /// Indexed by the recorder's thread number; `None` for threads that
    /// never reported a worker event.
    workers: Vec<Option<WorkerAcc>>,
    /// (thread, worker index) of threads seen as workers for the first
    /// time since [`Aggregator::take_new_workers`] last ran.
    new_workers: Vec<(u16, u32)>,
    /// Observations of tasks whose site has no histograms of its own
    /// (beyond [`MAX_SITE_HISTOGRAMS`], or the task is not tracked).
    rest: Hists,
    totals: Totals,
    /// Application regions per name.
    regions: RegionTable,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("events", &self.events)
            .field("tasks", &self.tracked())
            .field("sites", &self.sites.len())
            .finish()
    }
}

#[derive(Clone, Copy, Default)]
struct Totals {
    spawned: u64,
    terminated: u64,
    untracked: u64,
    polls: u64,
    busy_ns: u64,
    slow_polls: u64,
    wakes: u64,
    self_wakes: u64,
    first_poll_ns: u64,
    first_polls: u64,
    runnable: u64,
    max_runnable: u64,
    blocking_sections: u64,
    blocking_ns: u64,
    runtime_sections: u64,
    runtime_section_ns: u64,
}

/// Names nothing: the stream fed without a registry ([`Aggregator::feed`]).
struct NoNames;

impl NameLookup for NoNames {
    fn is_timer_resource(&self, _resource: u32) -> bool {
        false
    }

    fn is_runtime_site(&self, _site: u32) -> bool {
        false
    }
}

fn rec(h: &mut Histogram<u64>, v: u64) {
    h.saturating_record(v.min(HISTOGRAM_MAX_NS));
}

/// The accumulator of spawn site `site`, created on first use (with
/// histograms for the first [`MAX_SITE_HISTOGRAMS`] sites).
fn site_in(sites: &mut Sites, site: u32) -> &mut SiteAcc {
    sites.get_or_insert_with(site, || SiteAcc {
        hists: ((site as usize) < MAX_SITE_HISTOGRAMS).then(|| Box::new(Hists::new(SITE_SIGFIG))),
        ..SiteAcc::default()
    })
}

/// The state of recording thread `t`, made on first use.
#[inline]
fn thread_in(threads: &mut Vec<ThreadAcc>, t: u16) -> &mut ThreadAcc {
    let t = t as usize;
    if threads.len() <= t {
        grow_threads(threads, t);
    }
    &mut threads[t]
}

/// Makes room for thread `t`: once per thread, kept out of the event loop.
#[cold]
#[inline(never)]
fn grow_threads(threads: &mut Vec<ThreadAcc>, t: usize) {
    threads.resize(t + 1, ThreadAcc::default());
}

/// Where a site's observations go: its own histograms, or `rest`.
fn hists_for<'a>(site: &'a mut Option<Box<Hists>>, rest: &'a mut Hists) -> &'a mut Hists {
    match site {
        Some(h) => h,
        None => rest,
    }
}

impl Aggregator {
    /// A new aggregator using `config`'s `slow_poll_threshold` and `max_tracked_tasks`.
    pub fn new(config: &RecorderConfig) -> Self {
        Aggregator {
            slow: SlowPollThreshold::of(config),
            max_tasks: config.max_tracked_tasks,
            events: 0,
            tasks: TaskTable::new(config.max_tracked_tasks),
            unpolled: UnpolledTable::new(config.max_tracked_tasks),
            in_flight: 0,
            sites: Sites::default(),
            threads: Vec::new(),
            workers: Vec::new(),
            new_workers: Vec::new(),
            rest: Hists::new(SITE_SIGFIG),
            totals: Totals::default(),
            regions: RegionTable::default(),
        }
    }

    /// An aggregator that keeps every tracked task in the task table from
    /// its spawn: no spawn records, no first polls held by threads. The
    /// reference its fast paths must agree with.
    #[cfg(test)]
    fn without_fast_paths(config: &RecorderConfig) -> Self {
        Aggregator {
            unpolled: UnpolledTable::refusing(),
            ..Aggregator::new(config)
        }
    }

    /// Feeds events without names: resource kinds and spawn sites are
    /// unknown, so no wake counts as a timer's and no blocking section as
    /// the runtime's own (see [`feed_named`](Self::feed_named)).
    pub fn feed(&mut self, events: &[Event]) {
        self.feed_named(events, &NoNames);
    }

    /// Feeds events whose resource kinds and spawn sites `names` resolves
    /// (the same as [`Sink::on_events`] with the recorder's registry).
    pub fn feed_named(&mut self, events: &[Event], names: &impl NameLookup) {
        for e in events {
            self.event(e, names);
        }
    }

    /// Threads first seen as runtime workers since the last call, as
    /// (recorder thread number, worker index): the recorder names them in
    /// its registry.
    pub(crate) fn take_new_workers(&mut self) -> std::vec::Drain<'_, (u16, u32)> {
        self.new_workers.drain(..)
    }

    /// Live tracked tasks.
    fn tracked(&self) -> usize {
        self.tasks.len() + self.unpolled.len() + self.in_flight
    }

    /// Moves a tracked task's state into the task table, for an event that
    /// needs all of it: from its spawn record if it was never polled, or
    /// from the thread running its first poll.
    #[inline]
    fn promote(&mut self, id: u64) {
        if !self.tasks.maybe_tracked(id) {
            return;
        }
        if !self.promote_unpolled(id) && self.in_flight > 0 {
            self.adopt_first_poll(id);
        }
    }

    /// Where the state of tracked task `id` is in the task table, after
    /// moving it there (see [`Aggregator::promote`]) if needed.
    #[inline]
    fn tracked_slot(&mut self, id: u64) -> Option<Slot> {
        self.tasks.slot(id).or_else(|| {
            self.promote(id);
            self.tasks.slot(id)
        })
    }

    /// The state of tracked task `id`, moved into the task table if needed.
    #[inline]
    fn tracked_mut(&mut self, id: u64) -> Option<&mut TaskState> {
        let slot = self.tracked_slot(id)?;
        self.tasks.at_mut(slot)
    }

    /// Moves a never-polled task's spawn record into the task table; false
    /// when there was none.
    #[inline]
    fn promote_unpolled(&mut self, id: u64) -> bool {
        if !self.tasks.maybe_tracked(id) {
            return false;
        }
        let Some(u) = self.unpolled.take(id) else {
            return false;
        };
        self.tasks.uncount_outside(id);
        self.tasks.insert_new(
            id,
            TaskState {
                life: TaskLife::spawned(u.spawned_ns),
                site: u.site,
                ..TaskState::default()
            },
        );
        true
    }

    /// The thread running the first poll of `id` with the task's state.
    fn first_poll_thread(&self, id: u64) -> Option<usize> {
        if self.in_flight == 0 {
            return None;
        }
        self.threads
            .iter()
            .position(|th| th.fresh.is_some() && th.poll_task() == id)
    }

    /// Whether a thread runs the first poll of `id` with the task's state.
    fn in_first_poll(&self, id: u64) -> bool {
        self.first_poll_thread(id).is_some()
    }

    /// Moves the state of `id`, in its first poll on some thread, into the
    /// task table.
    fn adopt_first_poll(&mut self, id: u64) {
        if let Some(i) = self.first_poll_thread(id) {
            self.adopt_thread_first_poll(i);
        }
    }

    /// Moves the task in its first poll on thread `i` into the task table.
    fn adopt_thread_first_poll(&mut self, i: usize) {
        let th = &mut self.threads[i];
        let Some(sched_ns) = th.fresh.take() else {
            return;
        };
        self.in_flight -= 1;
        let state = TaskState {
            life: TaskLife::in_first_poll(th.poll_start),
            sched_ns,
            polls: 1,
            site: th.poll_site.unwrap_or(Registry::OVERFLOW),
            ..TaskState::default()
        };
        let id = th.poll_task();
        self.tasks.uncount_outside(id);
        self.tasks.insert_new(id, state);
    }

    fn site_mut(&mut self, site: u32) -> &mut SiteAcc {
        site_in(&mut self.sites, site)
    }

    fn thread_mut(&mut self, t: u16) -> &mut ThreadAcc {
        thread_in(&mut self.threads, t)
    }

    fn worker_mut(&mut self, thread: u16, worker: Option<u32>) -> Option<&mut WorkerAcc> {
        let worker = worker?;
        let t = thread as usize;
        if self.workers.len() <= t {
            self.workers.resize(t + 1, None);
        }
        let w = self.workers[t].get_or_insert_with(|| {
            self.new_workers.push((thread, worker));
            WorkerAcc::default()
        });
        w.worker = worker;
        Some(w)
    }

    #[inline(always)]
    fn event(&mut self, e: &Event, names: &impl NameLookup) {
        self.events += 1;
        // Each arm updates its thread's `ThreadRole` with the transition of
        // its kind (what `ThreadRole::observe` dispatches to), where it
        // holds the thread's state anyway.
        let d = e.decode();
        match d {
            DecodedEvent::Spawn { task, site, .. } => self.spawn(e, task, site),
            DecodedEvent::TaskName { task, name } => {
                if let Some(t) = self.tracked_mut(task) {
                    t.name = name;
                    let site = t.site;
                    let s = self.site_mut(site);
                    s.name.get_or_insert(name);
                }
            }
            DecodedEvent::PollStart {
                task,
                worker,
                latency_ns,
            } => self.poll_start(e, task, worker, latency_ns),
            DecodedEvent::PollEnd { task, worker } => self.poll_end(e, task, worker),
            DecodedEvent::Wake {
                task, self_wake, ..
            } => self.wake(e, &d, task, self_wake),
            DecodedEvent::ResourceWait { task, resource, .. } => {
                if let Some(t) = self.tracked_mut(task) {
                    t.resource = resource;
                    t.life.resource_wait(names.is_timer_resource(resource));
                    let site = t.site;
                    *self.site_mut(site).resources.entry(resource).or_insert(0) += 1;
                }
            }
            DecodedEvent::BlockingStart { task, kind, .. } => {
                let (tasks, unpolled) = (&self.tasks, &self.unpolled);
                let i = e.thread as usize;
                if self.threads.len() <= i {
                    self.threads.resize(i + 1, ThreadAcc::default());
                }
                let th = &mut self.threads[i];
                th.blocking_start = Some(e.ts_ns);
                th.role.section_started(task, kind, |task| {
                    let site = tasks
                        .get(task)
                        .map(|t| t.site)
                        .or_else(|| unpolled.site_of(task));
                    site.is_some_and(|s| names.is_runtime_site(s))
                });
            }
            DecodedEvent::BlockingEnd { .. } => {
                let th = self.thread_mut(e.thread);
                let section = th.role.section_ended();
                if let Some(s) = th.blocking_start.take() {
                    let d = e.ts_ns.saturating_sub(s);
                    let t = &mut self.totals;
                    if section.is_some_and(|s| s.runtime) {
                        t.runtime_sections += 1;
                        t.runtime_section_ns += d;
                    } else {
                        t.blocking_sections += 1;
                        t.blocking_ns += d;
                    }
                }
            }
            DecodedEvent::Terminate { task } => self.terminate(e, task),
            DecodedEvent::Park { worker } => {
                self.thread_mut(e.thread).role.parked();
                if let Some(w) = self.worker_mut(e.thread, worker) {
                    w.parks += 1;
                    w.park_start = Some(e.ts_ns);
                }
            }
            DecodedEvent::Unpark { worker } => {
                if let Some(w) = self.worker_mut(e.thread, worker)
                    && let Some(s) = w.park_start.take()
                {
                    w.parked_ns += e.ts_ns.saturating_sub(s);
                }
            }
            DecodedEvent::SpanEnter { .. } | DecodedEvent::SpanExit { .. } => {
                // The site of the task this thread is polling, if any.
                let th = self.threads.get(e.thread as usize);
                let site = th
                    .filter(|th| th.poll_task() != 0)
                    .and_then(|th| th.poll_site);
                self.regions.event(e, site);
            }
            DecodedEvent::Unknown { .. } => {}
        }
    }

    fn spawn(&mut self, e: &Event, task: u64, site: u32) {
        if self.tasks.maybe_tracked(task)
            && (self.unpolled.contains(task)
                || self.tasks.contains_key(task)
                || self.in_first_poll(task))
        {
            return; // second source for the same task: nothing new to count
        }
        self.totals.spawned += 1;
        if self.tracked() >= self.max_tasks {
            self.totals.untracked += 1;
            let s = self.site_mut(site);
            s.spawned += 1;
            s.untracked += 1;
            return;
        }
        let record = Unpolled {
            id: task,
            spawned_ns: e.ts_ns,
            site,
        };
        if self.unpolled.insert(record) {
            self.tasks.count_outside(task);
        } else {
            self.tasks.insert_new(
                task,
                TaskState {
                    life: TaskLife::spawned(e.ts_ns),
                    site,
                    ..TaskState::default()
                },
            );
        }
        self.runnable_add(1);
        let s = self.site_mut(site);
        s.spawned += 1;
        s.alive += 1;
    }

    fn runnable_add(&mut self, n: u64) {
        self.totals.runnable += n;
        self.totals.max_runnable = self.totals.max_runnable.max(self.totals.runnable);
    }

    #[inline(always)]
    fn wake(&mut self, e: &Event, decoded: &DecodedEvent, task: u64, self_wake: bool) {
        self.totals.wakes += 1;
        if self_wake {
            self.totals.self_wakes += 1;
        }
        // Every wake is observed on its thread (it may start a driver
        // turn), after the task is found: one lookup of the thread.
        let Some(t) = self
            .tracked_slot(task)
            .and_then(|slot| self.tasks.at_mut(slot))
        else {
            self.thread_mut(e.thread).role.woken_here();
            return;
        };
        t.wakes = t.wakes.saturating_add(1);
        if self_wake {
            t.self_wakes = t.self_wakes.saturating_add(1);
        }
        let site = t.site;
        let idle = t.life.wake(e.ts_ns).idle_ns();
        let th = thread_in(&mut self.threads, e.thread);
        th.role.woken_here();
        let mut ended = None;
        if let Some(d) = idle {
            // The lifecycle's rule, from what the waking thread was doing.
            let cause = th.role.wake_reason(e.thread, decoded, Some(&t.life));
            t.idle_ns[cause.reason.index()] += d;
            t.last_reason = cause.reason as u8;
            t.last_waker = cause.waker.unwrap_or(0);
            // The waking task's site: the one its thread is polling.
            let waker_site = match cause.reason {
                WakeReason::Sync if cause.waker == Some(th.poll_task()) => th.poll_site,
                _ => None,
            };
            ended = Some((d, cause.reason, waker_site));
            self.runnable_add(1);
        }
        let s = site_in(&mut self.sites, site);
        s.wakes += 1;
        if self_wake {
            s.self_wakes += 1;
        }
        if let Some((d, reason, waker_site)) = ended {
            s.idle_by_reason.add(reason, d);
            if let Some(w) = waker_site {
                s.woken_by(w);
            }
            rec(&mut hists_for(&mut s.hists, &mut self.rest).idle, d);
        }
    }

    #[inline(always)]
    fn poll_start(&mut self, e: &Event, task: u64, worker: Option<u32>, latency: Option<u64>) {
        self.totals.polls += 1;
        if let Some(w) = self.worker_mut(e.thread, worker) {
            w.polls += 1;
        }
        let i = e.thread as usize;
        if self.threads.get(i).is_some_and(|th| th.fresh.is_some()) {
            // The thread's previous first poll never ended: keep that task
            // in the table, as a poll without an end.
            self.adopt_thread_first_poll(i);
        }
        let on_worker = worker.is_some();
        // The table first: a task polled before is there, and the lookup of
        // an absent id is cheap.
        let mut slot = self.tasks.slot(task);
        if slot.is_none() && self.tasks.maybe_tracked(task) {
            if let Some(u) = self.unpolled.take(task) {
                self.first_poll_start(e, u, latency, on_worker);
                return;
            }
            if self.in_flight > 0 {
                self.adopt_first_poll(task);
                slot = self.tasks.slot(task);
            }
        }
        let Some(t) = slot.and_then(|s| self.tasks.at_mut(s)) else {
            let th = self.thread_mut(e.thread);
            th.role.poll_started(task, on_worker);
            th.poll_start = e.ts_ns;
            th.poll_site = None;
            if let Some(l) = latency {
                rec(&mut self.rest.sched, l);
            }
            return;
        };
        t.polls = t.polls.saturating_add(1);
        let site = t.site;
        let p = t.life.poll_start(e.ts_ns, latency);
        if let Some(d) = p.scheduled_ns {
            t.sched_ns += d;
        }
        if let Some(d) = p.idle_ns {
            // No wake seen (hooks only): the reason is unknown.
            t.idle_ns[WakeReason::Unknown.index()] += d;
            t.last_reason = WakeReason::Unknown as u8;
            t.last_waker = 0;
        }
        if p.was_runnable {
            self.totals.runnable = self.totals.runnable.saturating_sub(1);
        }
        if let Some(d) = p.first_poll_delay_ns {
            self.totals.first_poll_ns += d;
            self.totals.first_polls += 1;
        }
        let th = self.thread_mut(e.thread);
        th.role.poll_started(task, on_worker);
        th.poll_start = e.ts_ns;
        th.poll_site = Some(site);
        let s = site_in(&mut self.sites, site);
        s.polls += 1;
        if let Some(d) = p.first_poll_delay_ns {
            s.first_poll_ns += d;
            s.first_polls += 1;
        }
        if let Some(d) = p.scheduled_ns {
            s.sched_ns += d;
            rec(&mut hists_for(&mut s.hists, &mut self.rest).sched, d);
        }
        if let Some(d) = p.idle_ns {
            s.idle_by_reason.add(WakeReason::Unknown, d);
            rec(&mut hists_for(&mut s.hists, &mut self.rest).idle, d);
        }
    }

    /// The first poll of a task whose spawn record `u` was in `unpolled`:
    /// its state stays with the thread until the poll ends.
    fn first_poll_start(&mut self, e: &Event, u: Unpolled, latency: Option<u64>, on_worker: bool) {
        // The lifecycle's rules on the state the spawn record stands for.
        let p = TaskLife::spawned(u.spawned_ns).poll_start(e.ts_ns, latency);
        let since = p.first_poll_delay_ns.unwrap_or(0);
        let sched = p.scheduled_ns.unwrap_or(since);
        self.totals.runnable = self.totals.runnable.saturating_sub(1);
        self.totals.first_poll_ns += since;
        self.totals.first_polls += 1;
        let th = self.thread_mut(e.thread);
        th.role.poll_started(e.task, on_worker);
        th.poll_start = e.ts_ns;
        th.poll_site = Some(u.site);
        th.fresh = Some(sched);
        self.in_flight += 1;
        let s = site_in(&mut self.sites, u.site);
        s.polls += 1;
        s.first_poll_ns += since;
        s.first_polls += 1;
        s.sched_ns += sched;
        rec(&mut hists_for(&mut s.hists, &mut self.rest).sched, sched);
    }

    #[inline(always)]
    fn poll_end(&mut self, e: &Event, task: u64, worker: Option<u32>) {
        let th = self.thread_mut(e.thread);
        let open = th.poll_task() == task && task != 0;
        th.role.poll_ended(task);
        if open {
            if let Some(sched_ns) = th.fresh.take() {
                self.first_poll_end(e, task, worker, sched_ns);
                return;
            }
        } else if self.in_flight > 0 {
            // Ends on another thread than it started (not from Tokio).
            self.adopt_first_poll(task);
        }
        let th = self.thread_mut(e.thread);
        let mark = th.role.turn_mark(e.thread);
        let mut dur = None;
        let mut site = None;
        if open {
            dur = Some(e.ts_ns.saturating_sub(th.poll_start));
            site = th.poll_site.take();
        }
        let mut rewoken = false;
        if let Some(t) = self.tasks.get_mut(task) {
            let end = t.life.poll_end(e.ts_ns);
            t.life.set_last_poll(mark);
            rewoken = end.rewoken;
            dur = dur.or(end.open_ns);
            if let Some(d) = dur {
                t.busy_ns += d;
                if self.slow.is_slow(d) {
                    t.slow_polls = t.slow_polls.saturating_add(1);
                }
            }
            site = Some(t.site);
        }
        if rewoken {
            self.runnable_add(1);
        }
        if let Some(d) = dur {
            self.poll_done(e.thread, worker, d, site);
        }
    }

    /// The end of a first poll whose state the thread held (see
    /// [`Aggregator::first_poll_start`]): a task that did not terminate in
    /// it moves to the table.
    fn first_poll_end(&mut self, e: &Event, task: u64, worker: Option<u32>, sched_ns: u64) {
        self.in_flight -= 1;
        let th = self.thread_mut(e.thread);
        let mark = th.role.turn_mark(e.thread);
        let mut life = TaskLife::in_first_poll(th.poll_start);
        let d = life.poll_end(e.ts_ns).open_ns.unwrap_or(0);
        life.set_last_poll(mark);
        let site = th.poll_site.take().unwrap_or(Registry::OVERFLOW);
        let slow = self.slow.is_slow(d);
        self.tasks.uncount_outside(task);
        self.tasks.insert_new(
            task,
            TaskState {
                life,
                busy_ns: d,
                sched_ns,
                polls: 1,
                slow_polls: u32::from(slow),
                site,
                ..TaskState::default()
            },
        );
        self.poll_done(e.thread, worker, d, Some(site));
    }

    /// Counts a poll of `d` ns of a task of `site` in the totals, the
    /// worker and the site.
    fn poll_done(&mut self, thread: u16, worker: Option<u32>, d: u64, site: Option<u32>) {
        let slow = self.slow.is_slow(d);
        self.totals.busy_ns += d;
        if slow {
            self.totals.slow_polls += 1;
        }
        if let Some(w) = self.worker_mut(thread, worker) {
            w.busy_ns += d;
        }
        match site {
            Some(site) => {
                let s = site_in(&mut self.sites, site);
                s.busy_ns += d;
                if slow {
                    s.slow_polls += 1;
                }
                rec(&mut hists_for(&mut s.hists, &mut self.rest).poll, d);
            }
            None => rec(&mut self.rest.poll, d),
        }
    }

    fn terminate(&mut self, e: &Event, task: u64) {
        let polled_here = self
            .threads
            .get(e.thread as usize)
            .is_some_and(|th| th.poll_task() == task && task != 0);
        if polled_here
            && let Some(th) = self.threads.get_mut(e.thread as usize)
            && th.fresh.take().is_some()
        {
            // In its first poll (the hooks report a termination inside the
            // last poll): nothing of it is in the table. The poll's end
            // still finds its site in `poll_site`.
            self.in_flight -= 1;
            let site = th.poll_site.unwrap_or(Registry::OVERFLOW);
            self.tasks.uncount_outside(task);
            self.totals.terminated += 1;
            let s = self.site_mut(site);
            s.terminated += 1;
            s.alive = s.alive.saturating_sub(1);
            return;
        }
        let removed = self.tasks.remove(task).or_else(|| {
            if polled_here {
                // Not in its first poll anywhere else.
                self.promote_unpolled(task);
            } else {
                self.promote(task);
            }
            self.tasks.remove(task)
        });
        let Some(t) = removed else {
            return;
        };
        self.totals.terminated += 1;
        if t.life.phase() == TaskPhase::Runnable {
            self.totals.runnable = self.totals.runnable.saturating_sub(1);
        }
        let s = self.site_mut(t.site);
        s.terminated += 1;
        s.alive = s.alive.saturating_sub(1);
    }

    /// The process-wide histograms: `rest` plus every site's.
    fn merged_hists(&self) -> Hists {
        let mut all = Hists {
            poll: self.rest.poll.clone(),
            sched: self.rest.sched.clone(),
            idle: self.rest.idle.clone(),
        };
        for (_, s) in self.sites.iter() {
            if let Some(h) = &s.hists {
                // Same bounds and precision: `add` cannot fail; a failure
                // would only lose that site's share of the totals.
                let _ = all.poll.add(&h.poll);
                let _ = all.sched.add(&h.sched);
                let _ = all.idle.add(&h.idle);
            }
        }
        all
    }

    /// A copy of everything aggregated so far. `registry` resolves site and
    /// task names. Deterministic for the same event stream.
    pub fn snapshot(&self, registry: &Registry) -> Snapshot {
        let name_of = |id: u32| registry.string(id).map(|s| s.to_string());
        let threads = registry.threads();
        // A site's display name: its first task name, else its location.
        let site_name = |id: u32, acc: Option<&SiteAcc>| {
            let location = registry
                .site(id)
                .map_or_else(|| "<unknown>".to_string(), |s| s.to_string());
            acc.and_then(|s| s.name)
                .and_then(name_of)
                .unwrap_or(location)
        };
        let mut sites: Vec<SiteStats> = self
            .sites
            .iter()
            .map(|(id, s)| {
                let site = registry.site(id);
                let location = site
                    .as_ref()
                    .map_or_else(|| "<unknown>".to_string(), |s| s.to_string());
                let name = s.name.and_then(name_of).unwrap_or_else(|| location.clone());
                SiteStats {
                    id,
                    name,
                    location,
                    kind: site.map_or(TaskKind::Task, |s| s.kind),
                    spawned: s.spawned,
                    terminated: s.terminated,
                    alive: s.alive,
                    untracked: s.untracked,
                    polls: s.polls,
                    busy_ns: s.busy_ns,
                    scheduled_ns: s.sched_ns,
                    idle_ns: s.idle_by_reason.total_ns(),
                    first_poll_delay_ns: s.first_poll_ns,
                    first_polls: s.first_polls,
                    wakes: s.wakes,
                    self_wakes: s.self_wakes,
                    slow_polls: s.slow_polls,
                    resource_waits: s
                        .resources
                        .iter()
                        .map(|(&k, &n)| (name_of(k).unwrap_or_else(|| "?".into()), n))
                        .collect(),
                    idle_by_reason: s.idle_by_reason,
                    woken_by: {
                        let mut w: Vec<(String, u64)> = s
                            .woken_by
                            .iter()
                            .map(|&(id, n)| (site_name(id, self.sites.get(id)), n))
                            .collect();
                        w.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                        w
                    },
                    woken_by_other: s.woken_by_other,
                    poll_duration: s.hists.as_ref().map(|h| HistogramSummary::of(&h.poll)),
                    schedule_delay: s.hists.as_ref().map(|h| HistogramSummary::of(&h.sched)),
                    idle_time: s.hists.as_ref().map(|h| HistogramSummary::of(&h.idle)),
                }
            })
            .collect();
        sites.sort_by_key(|s| s.id);
        let unpolled = self.unpolled.iter().map(|u| TaskStats {
            id: u.id,
            site: u.site,
            name: None,
            state: TaskPhase::Runnable,
            polls: 0,
            busy_ns: 0,
            scheduled_ns: 0,
            idle_ns: 0,
            idle_ns_by_reason: [0; WakeReason::COUNT],
            last_wake_reason: None,
            last_waker: None,
            wakes: 0,
            self_wakes: 0,
            slow_polls: 0,
            last_resource: None,
        });
        let in_first_poll = self.threads.iter().filter_map(|th| {
            let sched = th.fresh?;
            Some(TaskStats {
                id: th.poll_task(),
                site: th.poll_site.unwrap_or(Registry::OVERFLOW),
                name: None,
                state: TaskPhase::Polling,
                polls: 1,
                busy_ns: 0,
                scheduled_ns: sched,
                idle_ns: 0,
                idle_ns_by_reason: [0; WakeReason::COUNT],
                last_wake_reason: None,
                last_waker: None,
                wakes: 0,
                self_wakes: 0,
                slow_polls: 0,
                last_resource: None,
            })
        });
        let mut tasks: Vec<TaskStats> = self
            .tasks
            .iter()
            .map(|(id, t)| TaskStats {
                id,
                site: t.site,
                name: name_of(t.name),
                state: t.life.phase(),
                polls: u64::from(t.polls),
                busy_ns: t.busy_ns,
                scheduled_ns: t.sched_ns,
                idle_ns: t.idle_ns.iter().sum(),
                idle_ns_by_reason: t.idle_ns,
                last_wake_reason: WakeReason::ALL.get(usize::from(t.last_reason)).copied(),
                last_waker: (t.last_waker != 0).then_some(t.last_waker),
                wakes: u64::from(t.wakes),
                self_wakes: u64::from(t.self_wakes),
                slow_polls: u64::from(t.slow_polls),
                last_resource: name_of(t.resource),
            })
            .chain(unpolled)
            .chain(in_first_poll)
            .collect();
        tasks.sort_by_key(|t| t.id);
        let workers = self
            .workers
            .iter()
            .enumerate()
            .filter_map(|(t, w)| Some((t as u16, w.as_ref()?)))
            .map(|(thread, w)| WorkerStats {
                thread,
                thread_name: threads
                    .get(thread as usize)
                    .map_or_else(|| format!("thread-{thread}"), |t| t.name.to_string()),
                worker: w.worker,
                polls: w.polls,
                busy_ns: w.busy_ns,
                parks: w.parks,
                parked_ns: w.parked_ns,
            })
            .collect();
        let all = self.merged_hists();
        let t = &self.totals;
        Snapshot {
            events: self.events,
            recorder: None,
            slow_poll_threshold_ns: self.slow.as_ns(),
            spawned: t.spawned,
            terminated: t.terminated,
            alive: self.tracked() as u64,
            untracked: t.untracked,
            runnable: t.runnable,
            max_runnable: t.max_runnable,
            polls: t.polls,
            busy_ns: t.busy_ns,
            slow_polls: t.slow_polls,
            wakes: t.wakes,
            self_wakes: t.self_wakes,
            first_poll_delay_ns: t.first_poll_ns,
            first_polls: t.first_polls,
            blocking_sections: t.blocking_sections,
            blocking_ns: t.blocking_ns,
            runtime_sections: t.runtime_sections,
            runtime_section_ns: t.runtime_section_ns,
            idle_by_reason: {
                // Each tracked task's idle time is in its site's.
                let mut all = IdleByReason::default();
                for (_, s) in self.sites.iter() {
                    all.merge(&s.idle_by_reason);
                }
                all
            },
            poll_duration: HistogramSummary::of(&all.poll),
            schedule_delay: HistogramSummary::of(&all.sched),
            idle_time: HistogramSummary::of(&all.idle),
            sites,
            workers,
            tasks,
            regions: self.regions.stats(registry),
        }
    }
}

impl Sink for Aggregator {
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        self.feed_named(events, registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, NO_VALUE, NO_WORKER, flags};

    fn ev(kind: EventKind, ts: u64, task: u64, thread: u16, aux: u32) -> Event {
        let mut e = Event::new(kind, ts, task);
        e.thread = thread;
        e.aux = aux;
        if kind == EventKind::PollStart {
            e.arg = NO_VALUE;
        }
        e
    }

    #[test]
    fn sites_and_workers_come_out_in_id_order() {
        let registry = Registry::new();
        let mut a = Aggregator::new(&RecorderConfig::default());
        // Sites: dense ids out of order, a large id and the overflow id.
        let sites = [5u32, Registry::OVERFLOW, 0, 70_000, 2];
        let mut events = Vec::new();
        for (i, &site) in sites.iter().enumerate() {
            let task = i as u64 + 1;
            let ts = i as u64 * 100;
            let thread = [7u16, 0, 3][i % 3];
            events.push(ev(EventKind::Spawn, ts, task, thread, site));
            events.push(ev(
                EventKind::PollStart,
                ts + 10,
                task,
                thread,
                u32::from(thread),
            ));
            events.push(ev(
                EventKind::PollEnd,
                ts + 30,
                task,
                thread,
                u32::from(thread),
            ));
        }
        // A non-worker thread polls too: no worker entry for it.
        events.push(ev(EventKind::PollStart, 1_000, 1, 9, NO_WORKER));
        events.push(ev(EventKind::PollEnd, 1_010, 1, 9, NO_WORKER));
        a.feed(&events);
        let snap = a.snapshot(&registry);
        let ids: Vec<u32> = snap.sites.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 2, 5, 70_000, Registry::OVERFLOW]);
        assert!(snap.sites.iter().all(|s| s.spawned == 1));
        assert_eq!(snap.sites.iter().map(|s| s.polls).sum::<u64>(), 6);
        let workers: Vec<(u16, u32, u64)> = snap
            .workers
            .iter()
            .map(|w| (w.thread, w.worker, w.polls))
            .collect();
        assert_eq!(workers, vec![(0, 0, 2), (3, 3, 1), (7, 7, 2)]);
        assert!(format!("{a:?}").contains("sites: 5"));
    }

    /// A random, mostly well-formed event stream of a runtime with
    /// `threads` threads (worker `i` on thread `i`): spawns (some twice, as
    /// from hooks and layer), names, polls that wake other tasks or
    /// themselves, wait on resources or terminate inside, wakes from
    /// outside polls, and, when `lossy`, about 3% of events lost (a poll
    /// without end, a termination from another thread...).
    fn random_stream(seed: u64, n: usize, threads: u16, lossy: bool) -> Vec<Event> {
        let mut rng = crate::test_rng::XorShift::new(seed | 1);
        let mut rnd = move |m: u64| rng.below(m);
        let mut out = Vec::with_capacity(n + 16);
        let mut ts = 1_000u64;
        let mut next_id = 1u64;
        let mut live: Vec<u64> = Vec::new();
        let mut polling: Vec<Option<u64>> = vec![None; threads as usize];
        while out.len() < n {
            ts += 1 + rnd(500);
            let thread = rnd(u64::from(threads)) as u16;
            let worker = u32::from(thread);
            let before = out.len();
            match (polling[thread as usize], rnd(10)) {
                (None, 0..=2) => {
                    // Ids from one counter, now and then a jump (other runtimes).
                    next_id += if rnd(50) == 0 {
                        3 * 1024 + rnd(5000)
                    } else {
                        1
                    };
                    let id = next_id;
                    out.push(ev(EventKind::Spawn, ts, id, thread, rnd(3) as u32));
                    if rnd(8) == 0 {
                        out.push(ev(EventKind::Spawn, ts + 1, id, thread, 1));
                    }
                    if rnd(6) == 0 {
                        out.push(ev(EventKind::TaskName, ts + 2, id, thread, 40));
                    }
                    live.push(id);
                }
                (None, 3..=7) if !live.is_empty() => {
                    let id = live[rnd(live.len() as u64) as usize];
                    let mut start = ev(EventKind::PollStart, ts, id, thread, worker);
                    if rnd(3) == 0 {
                        start.arg = rnd(2_000);
                    }
                    out.push(start);
                    polling[thread as usize] = Some(id);
                }
                (None, 8) if !live.is_empty() => {
                    let id = live[rnd(live.len() as u64) as usize];
                    out.push(ev(EventKind::Wake, ts, id, thread, 0));
                }
                (Some(id), k) => match k {
                    0 | 1 => {
                        let other = if live.is_empty() {
                            id
                        } else {
                            live[rnd(live.len() as u64) as usize]
                        };
                        let mut w = ev(EventKind::Wake, ts, other, thread, 0);
                        w.arg = id;
                        if other == id {
                            w.flags |= flags::SELF_WAKE;
                        }
                        out.push(w);
                    }
                    2 => out.push(ev(EventKind::ResourceWait, ts, id, thread, 41)),
                    3 | 4 => {
                        out.push(ev(EventKind::Terminate, ts, id, thread, 0));
                        out.push(ev(EventKind::PollEnd, ts + 1, id, thread, worker));
                        live.retain(|&t| t != id);
                        polling[thread as usize] = None;
                    }
                    _ => {
                        out.push(ev(EventKind::PollEnd, ts, id, thread, worker));
                        polling[thread as usize] = None;
                    }
                },
                _ => out.push(ev(EventKind::Park, ts, 0, thread, worker)),
            }
            if lossy && out.len() > before && rnd(32) == 0 {
                out.remove(before + rnd((out.len() - before) as u64) as usize);
            }
            if lossy && rnd(64) == 0 && !live.is_empty() {
                // Termination reported from another thread.
                let id = live.swap_remove(rnd(live.len() as u64) as usize);
                out.push(ev(
                    EventKind::Terminate,
                    ts + 2,
                    id,
                    (thread + 1) % threads,
                    0,
                ));
            }
        }
        out
    }

    #[test]
    fn fast_paths_agree_with_the_task_table_alone() {
        let registry = Registry::new();
        for (seed, max_tracked, lossy) in [
            (1, 65_536, false),
            (2, 65_536, true),
            (3, 24, false),
            (4, 24, true),
            (5, 1_000, true),
        ] {
            let config = RecorderConfig {
                max_tracked_tasks: max_tracked,
                slow_poll_threshold: std::time::Duration::from_nanos(300),
                ..RecorderConfig::default()
            };
            let events = random_stream(seed, 60_000, 4, lossy);
            let mut fast = Aggregator::new(&config);
            let mut reference = Aggregator::without_fast_paths(&config);
            let mut used_fast_paths = false;
            for (i, part) in events.chunks(997).enumerate() {
                fast.feed(part);
                reference.feed(part);
                used_fast_paths |= fast.unpolled.len() + fast.in_flight > 0;
                if i % 7 == 0 {
                    let (f, r) = (fast.snapshot(&registry), reference.snapshot(&registry));
                    assert_eq!(f, r, "seed {seed}, after {} events", (i + 1) * 997);
                }
            }
            let (f, r) = (fast.snapshot(&registry), reference.snapshot(&registry));
            assert_eq!(f, r, "seed {seed}, end");
            assert!(used_fast_paths, "seed {seed}: the fast paths ran");
            assert!(f.spawned > 5_000 && f.polls > 10_000 && f.wakes > 1_000);
            if max_tracked < 100 {
                assert!(f.untracked > 0, "seed {seed}: some tasks untracked");
            }
        }
    }

    #[test]
    fn a_task_in_its_first_poll_shows_as_polling() {
        let registry = Registry::new();
        let mut a = Aggregator::new(&RecorderConfig::default());
        a.feed(&[
            ev(EventKind::Spawn, 100, 7, 0, 2),
            ev(EventKind::Spawn, 110, 8, 0, 2),
            ev(EventKind::PollStart, 150, 7, 1, 1),
        ]);
        assert_eq!((a.unpolled.len(), a.in_flight, a.tasks.len()), (1, 1, 0));
        let snap = a.snapshot(&registry);
        assert_eq!(snap.alive, 2);
        let states: Vec<(u64, TaskPhase, u64, u64)> = snap
            .tasks
            .iter()
            .map(|t| (t.id, t.state, t.polls, t.scheduled_ns))
            .collect();
        assert_eq!(
            states,
            [
                (7, TaskPhase::Polling, 1, 50),
                (8, TaskPhase::Runnable, 0, 0)
            ]
        );
        // Terminated inside that poll: nothing of it ever reaches the table.
        a.feed(&[
            ev(EventKind::Terminate, 180, 7, 1, 0),
            ev(EventKind::PollEnd, 181, 7, 1, 1),
        ]);
        assert_eq!((a.unpolled.len(), a.in_flight, a.tasks.len()), (1, 0, 0));
        let snap = a.snapshot(&registry);
        assert_eq!((snap.terminated, snap.alive, snap.busy_ns), (1, 1, 31));
    }
}
