//! The per-event bookkeeping behind [`Analyzer`](super::Analyzer): the
//! core's aggregator (per-site table, percentiles) and the core's task
//! lifecycle ([`TaskTracker`]) for what the aggregator does not keep
//! (idle time by resource and by wake reason, who woke whom, the worst
//! lists, blocking sections, the application's apart from the runtime's).
//! It builds no report (see `report.rs`, which reads it).

use std::collections::{BTreeMap, HashMap};

use taskline_core::Aggregator;
use taskline_core::RecorderConfig;
use taskline_core::{
    BlockingKind, DecodedEvent, Event, IdMap, IdleByReason, NameLookup, TaskTracker, Transition,
    WakeCause, WakeReason,
};

use super::AnalysisConfig;
use super::topk::TopK;
use super::utilization::Timeline;

/// Site key for untracked tasks (no site in the registry: shown as `<unknown>`).
pub(crate) const UNKNOWN: u32 = u32::MAX;
/// Site / resource key for everything beyond `max_keys`.
pub(crate) const OTHER: u32 = u32::MAX - 1;
/// Resource key for idle periods after a poll without a `ResourceWait`.
pub(crate) const NO_RESOURCE: u32 = u32::MAX - 2;

/// Waking sites kept per woken site (per reason); the rest fold into
/// [`OTHER`].
pub(crate) const MAX_WAKER_SITES: usize = 32;

/// Idle periods a waking site ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WakerAcc {
    pub(crate) wakes: u64,
    pub(crate) idle_ns: u64,
}

/// Idle time of one spawn site's tasks by wake reason, and which sites'
/// tasks woke them.
#[derive(Clone, Debug, Default)]
pub(crate) struct SiteReasons {
    pub(crate) idle: IdleByReason,
    /// `(reason, waking site)` of the idle periods a task ended
    /// ([`WakeReason::Sync`], or [`WakeReason::Blocking`] from a
    /// `spawn_blocking` task): at most [`MAX_WAKER_SITES`] sites per reason.
    pub(crate) woken_by: BTreeMap<(WakeReason, u32), WakerAcc>,
}

/// The task that terminated last on a thread.
#[derive(Clone, Copy, Debug)]
struct Terminated {
    task: u64,
    site: u32,
    idle: IdleByReason,
}

/// A blocking section not ended yet.
#[derive(Clone, Copy, Debug)]
struct OpenSection {
    start: u64,
    kind: Option<BlockingKind>,
    /// The runtime's own (a `spawn_blocking` at a site inside Tokio: its
    /// worker threads), not the application's.
    runtime: bool,
}

/// Idle time attributed to one resource kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceAcc {
    pub(crate) idle_ns: u64,
    pub(crate) waits: u64,
}

/// What the analysis keeps with each live task (the phase is the core
/// lifecycle's, in the tracker).
#[derive(Clone, Copy, Debug)]
struct TaskInfo {
    site: u32,
    /// Resource kind of the last `ResourceWait` of the last poll.
    resource: Option<u32>,
}

/// One scheduling delay sample of the worst list: ordered by delay, then
/// earlier first, then lower task id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DelaySample {
    pub(crate) delay_ns: u64,
    pub(crate) neg_ts: std::cmp::Reverse<u64>,
    pub(crate) neg_task: std::cmp::Reverse<u64>,
    pub(crate) site: u32,
    /// The task was followed (its idle time is known).
    pub(crate) tracked: bool,
}

/// One slow poll of the worst list, ordered like [`DelaySample`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SlowSample {
    pub(crate) duration_ns: u64,
    pub(crate) neg_start: std::cmp::Reverse<u64>,
    pub(crate) neg_task: std::cmp::Reverse<u64>,
    pub(crate) site: u32,
    pub(crate) worker: u32,
    /// The task was followed (its idle time is known).
    pub(crate) tracked: bool,
}

/// Blocking sections (`spawn_blocking` / `block_in_place`) totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SectionAcc {
    pub(crate) count: u64,
    pub(crate) total_ns: u64,
}

/// Everything the analyses accumulate.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: AnalysisConfig,
    pub(crate) events: u64,
    pub(crate) by_kind: [u64; 15],
    /// The core's aggregation: per-site table and latency percentiles.
    pub(crate) agg: Aggregator,
    /// The core's task lifecycle, with each task's site and last resource.
    tasks: TaskTracker<TaskInfo>,
    pub(crate) resources: BTreeMap<u32, ResourceAcc>,
    /// Idle time of every tracked task by wake reason.
    pub(crate) idle_by_reason: IdleByReason,
    /// The same per spawn site (at most `max_keys` sites, the rest in [`OTHER`]).
    pub(crate) site_reasons: BTreeMap<u32, SiteReasons>,
    /// Idle by reason of each live tracked task that was idle.
    task_idle: IdMap<u64, IdleByReason>,
    /// The same of terminated tasks still in a worst list (at most
    /// `2 * top_n` once pruned).
    listed_idle: IdMap<u64, IdleByReason>,
    /// Per thread, the task that terminated there last: Tokio terminates a
    /// task inside its last poll (a slow one is listed at the `PollEnd`
    /// that follows) and a `spawn_blocking` task before it wakes its
    /// `JoinHandle` (the wake names it). One entry per recording thread.
    last_terminated: HashMap<u16, Terminated>,
    pub(crate) worst_delays: TopK<DelaySample>,
    pub(crate) slow_polls: u64,
    pub(crate) worst_polls: TopK<SlowSample>,
    /// Open blocking sections by writing thread.
    open_sections: HashMap<u16, OpenSection>,
    /// The application's totals by `BlockingKind` byte (0 spawn_blocking,
    /// 1 block_in_place).
    pub(crate) sections: [SectionAcc; 2],
    /// The runtime's own sections (Tokio's worker threads), apart.
    pub(crate) runtime_sections: SectionAcc,
    pub(crate) timeline: Timeline,
}

/// Live tasks the core aggregator inside the analysis follows when the
/// analysis is unbounded: the most a [`RecorderConfig`] accepts. Its tables
/// grow with the live tasks, not to this bound.
const EXACT_MAX_TRACKED: usize = 1 << 26;

impl State {
    pub(crate) fn new(config: AnalysisConfig) -> Self {
        let agg = Aggregator::new(&RecorderConfig {
            max_tracked_tasks: config.max_tracked_tasks.unwrap_or(EXACT_MAX_TRACKED),
            ..config.recorder.clone()
        });
        State {
            events: 0,
            by_kind: [0; 15],
            agg,
            tasks: TaskTracker::new(
                config.max_tracked_tasks.unwrap_or(usize::MAX),
                config.slow_polls(),
            ),
            resources: BTreeMap::new(),
            idle_by_reason: IdleByReason::default(),
            site_reasons: BTreeMap::new(),
            task_idle: IdMap::default(),
            listed_idle: IdMap::default(),
            last_terminated: HashMap::new(),
            worst_delays: TopK::new(config.top_n),
            slow_polls: 0,
            worst_polls: TopK::new(config.top_n),
            open_sections: HashMap::new(),
            sections: Default::default(),
            runtime_sections: SectionAcc::default(),
            timeline: Timeline::new(config.max_utilization_points),
            config,
        }
    }

    /// Process a batch; `names` resolves resource kinds and sites for the
    /// lifecycle's wake-reason rule.
    pub(crate) fn feed(&mut self, events: &[Event], names: &impl NameLookup) {
        self.agg.feed(events);
        for e in events {
            self.event(e, names);
        }
    }

    /// Process one event (the aggregator is fed by [`State::feed`]).
    fn event(&mut self, e: &Event, names: &impl NameLookup) {
        self.events += 1;
        let Some(kind) = e.kind() else {
            self.by_kind[0] += 1;
            return;
        };
        self.by_kind[kind as usize] += 1;
        self.timeline.advance(e.ts_ns);
        // Timestamps never go backwards inside the analysis.
        let ts = self.timeline.end();
        let e = Event { ts_ns: ts, ..*e };
        match e.decode() {
            DecodedEvent::PollStart {
                task,
                worker: Some(w),
                ..
            } => self.timeline.poll_start(w, task, ts),
            DecodedEvent::PollEnd {
                worker: Some(w), ..
            } => {
                self.timeline.poll_end(w, ts);
            }
            _ => {}
        }
        let t = self.tasks.apply(&e, names, |site| TaskInfo {
            site,
            resource: None,
        });
        match t {
            Transition::PollStarted {
                task,
                latency_ns,
                started,
                value,
            } => {
                if let Some(info) = value {
                    // A new poll: its resource waits start afresh.
                    if let Some(v) = self.tasks.value_mut(task) {
                        v.resource = None;
                    }
                    // Idle ended by a poll, no wake recorded: no reason known.
                    if let Some(d) = started.and_then(|p| p.idle_ns) {
                        let cause = WakeCause {
                            reason: WakeReason::Unknown,
                            waker: None,
                        };
                        self.add_idle(task, info, d, cause, e.thread);
                    }
                }
                let delay = match started {
                    Some(p) => p.scheduled_ns,
                    None => latency_ns,
                };
                if let Some(d) = delay {
                    self.worst_delays.offer(
                        DelaySample {
                            delay_ns: d,
                            neg_ts: std::cmp::Reverse(ts),
                            neg_task: std::cmp::Reverse(task),
                            site: value.map_or(UNKNOWN, |v| v.site),
                            tracked: value.is_some(),
                        },
                        |a, b| a.neg_task == b.neg_task,
                    );
                }
            }
            Transition::Polled {
                task,
                worker,
                start_ns,
                duration_ns,
                slow: true,
                value,
                ..
            } => {
                self.slow_polls += 1;
                self.worst_polls.offer(
                    SlowSample {
                        duration_ns,
                        neg_start: std::cmp::Reverse(start_ns),
                        neg_task: std::cmp::Reverse(task),
                        site: value.map_or(UNKNOWN, |v| v.site),
                        worker: worker.unwrap_or(taskline_core::NO_WORKER),
                        tracked: value.is_some(),
                    },
                    |_, _| false,
                );
                // A task terminated inside this poll: keep its idle time if
                // the poll listed it.
                if let Some(t) = self.last_terminated.get(&e.thread).copied()
                    && t.task == task
                    && !self.listed_idle.contains_key(&task)
                    && self.is_listed(task)
                {
                    self.keep_listed(task, t.idle);
                }
            }
            Transition::Woken {
                task,
                cause,
                woken: Some(w),
                value: Some(info),
                ..
            } => {
                if let Some(d) = w.idle_ns() {
                    self.add_idle(task, info, d, cause, e.thread);
                }
            }
            Transition::Terminated { task, value } => {
                let idle = self.task_idle.remove(&task).unwrap_or_default();
                self.last_terminated.insert(
                    e.thread,
                    Terminated {
                        task,
                        site: value.site,
                        idle,
                    },
                );
                if self.is_listed(task) {
                    self.keep_listed(task, idle);
                }
            }
            Transition::Other(DecodedEvent::ResourceWait { task, resource, .. }) => {
                if let Some(v) = self.tasks.value_mut(task) {
                    v.resource = Some(resource);
                }
            }
            Transition::Other(DecodedEvent::BlockingStart { task, kind, .. }) => {
                // The runtime's own section: a spawn_blocking task spawned
                // inside Tokio (the rule of `Site::is_runtime_internal`).
                let runtime = kind == Some(BlockingKind::SpawnBlocking)
                    && task
                        .and_then(|t| self.tasks.value_mut(t))
                        .is_some_and(|v| names.is_runtime_site(v.site));
                self.open_sections.insert(
                    e.thread,
                    OpenSection {
                        start: ts,
                        kind,
                        runtime,
                    },
                );
            }
            Transition::Other(DecodedEvent::BlockingEnd { .. }) => {
                if let Some(OpenSection {
                    start,
                    kind: Some(k),
                    runtime,
                }) = self.open_sections.remove(&e.thread)
                {
                    let acc = if runtime {
                        &mut self.runtime_sections
                    } else {
                        &mut self.sections[k as usize]
                    };
                    acc.count += 1;
                    acc.total_ns = acc.total_ns.saturating_add(ts - start);
                }
            }
            _ => {}
        }
    }

    /// Tracked task `task` (`info`) ended an idle time of `d` for `cause`,
    /// on `thread`: attribute it to its resource, its reason, its site and
    /// the waking site.
    fn add_idle(&mut self, task: u64, info: TaskInfo, d: u64, cause: WakeCause, thread: u16) {
        self.add_resource_idle(info.resource, d);
        let reason = cause.reason;
        self.idle_by_reason.add(reason, d);
        self.task_idle.entry(task).or_default().add(reason, d);
        let waker_site = match reason {
            WakeReason::Sync | WakeReason::Blocking => cause
                .waker
                .filter(|&w| w != task)
                .map(|w| self.site_of(w, thread)),
            _ => None,
        };
        let key = self.bounded_key(info.site);
        let site = self.site_reasons.entry(key).or_default();
        site.idle.add(reason, d);
        if let Some(w) = waker_site {
            let per_reason = site
                .woken_by
                .range((reason, 0)..=(reason, u32::MAX))
                .count();
            let key = if site.woken_by.contains_key(&(reason, w)) || per_reason < MAX_WAKER_SITES {
                (reason, w)
            } else {
                (reason, OTHER)
            };
            let acc = site.woken_by.entry(key).or_default();
            acc.wakes += 1;
            acc.idle_ns = acc.idle_ns.saturating_add(d);
        }
    }

    /// `site` as a key of `site_reasons`: itself, or [`OTHER`] past `max_keys`.
    fn bounded_key(&self, site: u32) -> u32 {
        if self.site_reasons.contains_key(&site) || self.site_reasons.len() < self.config.max_keys {
            site
        } else {
            OTHER
        }
    }

    /// The spawn site of task `task`, a waker on `thread`: a live tracked
    /// task's, or the one that just terminated there (a `spawn_blocking`
    /// task wakes its `JoinHandle` after its `Terminate`), else [`UNKNOWN`].
    fn site_of(&mut self, task: u64, thread: u16) -> u32 {
        if let Some(v) = self.tasks.value_mut(task) {
            return v.site;
        }
        match self.last_terminated.get(&thread) {
            Some(t) if t.task == task => t.site,
            _ => UNKNOWN,
        }
    }

    /// Whether a worst list holds task `task`.
    fn is_listed(&self, task: u64) -> bool {
        self.worst_delays.iter().any(|d| d.neg_task.0 == task)
            || self.worst_polls.iter().any(|p| p.neg_task.0 == task)
    }

    /// Keeps the idle time of listed task `task`, which terminated; drops
    /// that of tasks no longer listed once more than `2 * top_n` are kept.
    fn keep_listed(&mut self, task: u64, idle: IdleByReason) {
        self.listed_idle.insert(task, idle);
        if self.listed_idle.len() > 2 * self.config.top_n {
            let mut listed = std::mem::take(&mut self.listed_idle);
            listed.retain(|t, _| self.is_listed(*t));
            self.listed_idle = listed;
        }
    }

    /// Idle time by reason of task `task`: live, or terminated and listed
    /// (zero for a task never idle).
    pub(crate) fn task_idle(&self, task: u64) -> IdleByReason {
        self.task_idle
            .get(&task)
            .or_else(|| self.listed_idle.get(&task))
            .copied()
            .unwrap_or_default()
    }

    /// Idle time `d` ended: attribute it to `resource`.
    fn add_resource_idle(&mut self, resource: Option<u32>, d: u64) {
        let resource = resource.unwrap_or(NO_RESOURCE);
        let key = if self.resources.contains_key(&resource)
            || self.resources.len() < self.config.max_keys
        {
            resource
        } else {
            OTHER
        };
        let r = self.resources.entry(key).or_default();
        r.idle_ns = r.idle_ns.saturating_add(d);
        r.waits += 1;
    }
}
