//! The per-event bookkeeping behind [`Analyzer`](super::Analyzer): the
//! core's aggregator (per-site table, percentiles) and the core's task
//! lifecycle ([`TaskTracker`]) for what the aggregator does not keep
//! (idle time by resource, the worst lists, blocking sections). It builds
//! no report (see `report.rs`, which reads it).

use std::collections::{BTreeMap, HashMap};

use taskline_core::Aggregator;
use taskline_core::RecorderConfig;
use taskline_core::{BlockingKind, DecodedEvent, Event, NameLookup, TaskTracker, Transition};

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
    pub(crate) events: u64,
    pub(crate) by_kind: [u64; 15],
    /// The core's aggregation: per-site table and latency percentiles.
    pub(crate) agg: Aggregator,
    /// The core's task lifecycle, with each task's site and last resource.
    tasks: TaskTracker<TaskInfo>,
    pub(crate) resources: BTreeMap<u32, ResourceAcc>,
    pub(crate) worst_delays: TopK<DelaySample>,
    pub(crate) slow_polls: u64,
    pub(crate) worst_polls: TopK<SlowSample>,
    /// Open blocking sections by writing thread: (start, kind).
    open_sections: HashMap<u16, (u64, Option<BlockingKind>)>,
    /// Totals by `BlockingKind` byte (0 spawn_blocking, 1 block_in_place).
    pub(crate) sections: [SectionAcc; 2],
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
            worst_delays: TopK::new(config.top_n),
            slow_polls: 0,
            worst_polls: TopK::new(config.top_n),
            open_sections: HashMap::new(),
            sections: Default::default(),
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
                    if let Some(d) = started.and_then(|p| p.idle_ns) {
                        self.add_idle(info.resource, d);
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
                    },
                    |_, _| false,
                );
            }
            Transition::Woken {
                woken: Some(w),
                value: Some(info),
                ..
            } => {
                if let Some(d) = w.idle_ns() {
                    self.add_idle(info.resource, d);
                }
            }
            Transition::Other(DecodedEvent::ResourceWait { task, resource, .. }) => {
                if let Some(v) = self.tasks.value_mut(task) {
                    v.resource = Some(resource);
                }
            }
            Transition::Other(DecodedEvent::BlockingStart { kind, .. }) => {
                self.open_sections.insert(e.thread, (ts, kind));
            }
            Transition::Other(DecodedEvent::BlockingEnd { .. }) => {
                if let Some((start, Some(k))) = self.open_sections.remove(&e.thread) {
                    let acc = &mut self.sections[k as usize];
                    acc.count += 1;
                    acc.total_ns = acc.total_ns.saturating_add(ts - start);
                }
            }
            _ => {}
        }
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
}
