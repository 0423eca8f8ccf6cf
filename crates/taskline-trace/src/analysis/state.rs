//! The per-event bookkeeping behind [`Analyzer`](super::Analyzer).

use std::collections::{BTreeMap, HashMap};

use taskline_core::Aggregator;
use taskline_core::RecorderConfig;
use taskline_core::Registry;
use taskline_core::{Event, EventKind, NO_VALUE, NO_WORKER, flags};

use super::AnalysisConfig;
use super::topk::TopK;
use super::utilization::Timeline;

/// Site key for untracked tasks (no site in the registry: shown as `<unknown>`).
pub(crate) const UNKNOWN: u32 = u32::MAX;
/// Site / resource key for everything beyond `max_keys`.
pub(crate) const OTHER: u32 = u32::MAX - 1;
/// Resource key for idle periods after a poll without a `ResourceWait`.
pub(crate) const NO_RESOURCE: u32 = u32::MAX - 2;

/// Idle time attributed to one resource kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceAcc {
    pub(crate) idle_ns: u64,
    pub(crate) waits: u64,
}

/// Where a tracked task is in its life (the same rules as the core's `Aggregator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Spawned or woken, not yet polled.
    Runnable,
    /// Being polled.
    Polling,
    /// Polled, waiting to be woken.
    Idle,
}

/// What the analysis remembers about a live task.
#[derive(Clone, Debug)]
struct TaskState {
    site: u32,
    phase: Phase,
    /// When the task entered its phase.
    mark: u64,
    /// Woken while being polled: runnable again from that poll's end.
    woken_in_poll: bool,
    /// Resource kind of the last `ResourceWait` of the last poll.
    resource: Option<u32>,
    /// `Terminate` arrived during a poll (Tokio's terminate hook runs inside
    /// the last poll): forget the task at that poll's end.
    terminated: bool,
}

/// One scheduling delay sample of the worst list: ordered by delay, then
/// earlier first, then lower task id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DelaySample {
    pub(crate) delay_ns: u64,
    pub(crate) neg_ts: std::cmp::Reverse<u64>,
    pub(crate) neg_task: std::cmp::Reverse<u64>,
    pub(crate) site: u32,
}

/// One slow poll of the worst list, ordered like [`DelaySample`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SlowSample {
    pub(crate) duration_ns: u64,
    pub(crate) neg_start: std::cmp::Reverse<u64>,
    pub(crate) neg_task: std::cmp::Reverse<u64>,
    pub(crate) site: u32,
    pub(crate) worker: u32,
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
    pub(crate) slow_ns: u64,
    pub(crate) events: u64,
    pub(crate) by_kind: [u64; 15],
    /// The core's aggregation: per-site table and latency percentiles.
    pub(crate) agg: Aggregator,
    tasks: HashMap<u64, TaskState>,
    pub(crate) resources: BTreeMap<u32, ResourceAcc>,
    pub(crate) worst_delays: TopK<DelaySample>,
    pub(crate) slow_polls: u64,
    pub(crate) worst_polls: TopK<SlowSample>,
    /// Open blocking sections by writing thread: (start, kind).
    open_sections: HashMap<u16, (u64, u8)>,
    /// Totals by `BlockingKind` byte (0 spawn_blocking, 1 block_in_place).
    pub(crate) sections: [SectionAcc; 2],
    pub(crate) timeline: Timeline,
}

impl State {
    pub(crate) fn new(config: AnalysisConfig) -> Self {
        let agg = Aggregator::new(&RecorderConfig {
            slow_poll_threshold: config.slow_poll_threshold,
            max_tracked_tasks: config.max_tracked_tasks,
            ..RecorderConfig::default()
        });
        State {
            slow_ns: u64::try_from(config.slow_poll_threshold.as_nanos()).unwrap_or(u64::MAX),
            events: 0,
            by_kind: [0; 15],
            agg,
            tasks: HashMap::new(),
            resources: BTreeMap::new(),
            worst_delays: TopK::new(config.top_n),
            slow_polls: 0,
            worst_polls: TopK::new(config.top_n),
            open_sections: HashMap::new(),
            sections: Default::default(),
            timeline: Timeline::new(config.max_utilization_points),
            config,
        }
    }

    /// Process a batch.
    pub(crate) fn feed(&mut self, events: &[Event]) {
        self.agg.feed(events);
        for e in events {
            self.event(e);
        }
    }

    /// Process one event (the aggregator is fed by [`State::feed`]).
    fn event(&mut self, e: &Event) {
        self.events += 1;
        let Some(kind) = e.kind() else {
            self.by_kind[0] += 1;
            return;
        };
        self.by_kind[kind as usize] += 1;
        self.timeline.advance(e.ts_ns);
        // Timestamps never go backwards inside the analysis.
        let ts = self.timeline.end();
        match kind {
            EventKind::Spawn => self.spawn(e.task, e.aux, ts),
            EventKind::PollStart => self.poll_start(e, ts),
            EventKind::PollEnd => self.poll_end(e, ts),
            EventKind::Wake => self.wake(e.task, ts),
            EventKind::ResourceWait => {
                if let Some(t) = self.tasks.get_mut(&e.task) {
                    t.resource = Some(e.aux);
                }
            }
            EventKind::Terminate => match self.tasks.get_mut(&e.task) {
                Some(t) if t.phase == Phase::Polling => t.terminated = true,
                _ => {
                    self.tasks.remove(&e.task);
                }
            },
            EventKind::BlockingStart => {
                self.open_sections
                    .insert(e.thread, (ts, e.flags & flags::ENUM_MASK));
            }
            EventKind::BlockingEnd => {
                if let Some((start, k)) = self.open_sections.remove(&e.thread)
                    && let Some(acc) = self.sections.get_mut(usize::from(k))
                {
                    acc.count += 1;
                    acc.total_ns = acc.total_ns.saturating_add(ts - start);
                }
            }
            EventKind::TaskName
            | EventKind::Park
            | EventKind::Unpark
            | EventKind::SpanEnter
            | EventKind::SpanExit
            | EventKind::Counter => {}
        }
    }

    fn spawn(&mut self, task: u64, site: u32, ts: u64) {
        // A second Spawn of a live task adds nothing; beyond the limit a task is untracked.
        if self.tasks.contains_key(&task) || self.tasks.len() >= self.config.max_tracked_tasks {
            return;
        }
        self.tasks.insert(
            task,
            TaskState {
                site,
                phase: Phase::Runnable,
                mark: ts,
                woken_in_poll: false,
                resource: None,
                terminated: false,
            },
        );
    }

    /// Idle time `d` ended: attribute it to `resource`.
    fn add_idle(&mut self, resource: Option<u32>, d: u64) {
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

    fn poll_start(&mut self, e: &Event, ts: u64) {
        if e.aux != NO_WORKER {
            self.timeline.poll_start(e.aux, e.task, ts);
        }
        let latency = (e.arg != NO_VALUE).then_some(e.arg);
        let mut site = UNKNOWN;
        let mut delay = latency;
        let mut idle = None;
        if let Some(t) = self.tasks.get_mut(&e.task) {
            site = t.site;
            match t.phase {
                Phase::Runnable => delay = Some(latency.unwrap_or(ts.saturating_sub(t.mark))),
                Phase::Idle => {
                    // No wake seen (hooks only): Tokio's latency says when it was scheduled.
                    let scheduled_at = latency.map_or(ts, |l| ts.saturating_sub(l));
                    idle = Some((t.resource, scheduled_at.saturating_sub(t.mark)));
                }
                Phase::Polling => delay = None,
            }
            t.phase = Phase::Polling;
            t.mark = ts;
            t.woken_in_poll = false;
            t.resource = None;
        }
        if let Some((resource, d)) = idle {
            self.add_idle(resource, d);
        }
        if let Some(d) = delay {
            self.worst_delays.offer(
                DelaySample {
                    delay_ns: d,
                    neg_ts: std::cmp::Reverse(ts),
                    neg_task: std::cmp::Reverse(e.task),
                    site,
                },
                |a, b| a.neg_task == b.neg_task,
            );
        }
    }

    fn poll_end(&mut self, e: &Event, ts: u64) {
        let mut start = if e.aux != NO_WORKER {
            self.timeline
                .poll_end(e.aux, ts)
                .filter(|(_, task)| *task == e.task)
                .map(|(start, _)| start)
        } else {
            None
        };
        let mut site = UNKNOWN;
        let mut forget = false;
        if let Some(t) = self.tasks.get_mut(&e.task) {
            site = t.site;
            forget = t.terminated;
            if t.phase == Phase::Polling {
                start = start.or(Some(t.mark));
                t.phase = if t.woken_in_poll {
                    Phase::Runnable
                } else {
                    Phase::Idle
                };
                t.woken_in_poll = false;
                t.mark = ts;
            }
        }
        if forget {
            self.tasks.remove(&e.task);
        }
        let Some(start) = start else { return };
        let dur = ts.saturating_sub(start);
        if dur > self.slow_ns {
            self.slow_polls += 1;
            self.worst_polls.offer(
                SlowSample {
                    duration_ns: dur,
                    neg_start: std::cmp::Reverse(start),
                    neg_task: std::cmp::Reverse(e.task),
                    site,
                    worker: e.aux,
                },
                |_, _| false,
            );
        }
    }

    fn wake(&mut self, task: u64, ts: u64) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        match t.phase {
            Phase::Idle => {
                let d = ts.saturating_sub(t.mark);
                let resource = t.resource;
                t.phase = Phase::Runnable;
                t.mark = ts;
                self.add_idle(resource, d);
            }
            Phase::Polling => t.woken_in_poll = true,
            Phase::Runnable => {}
        }
    }

    /// Build the report (see `report.rs`).
    pub(crate) fn report(&self, registry: &Registry) -> super::Report {
        super::report::build(self, registry)
    }
}
