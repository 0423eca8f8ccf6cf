//! The per-event bookkeeping behind [`Analyzer`](super::Analyzer).

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use taskline_layer::event::{Event, EventKind, NO_VALUE, NO_WORKER, flags};
use taskline_layer::registry::Registry;

use super::AnalysisConfig;
use super::topk::TopK;
use super::utilization::Timeline;

/// Site key for tasks whose spawn site is unknown.
pub(crate) const UNKNOWN: u32 = u32::MAX;
/// Site / resource key for everything beyond `max_keys`.
pub(crate) const OTHER: u32 = u32::MAX - 1;
/// Resource key for idle periods after a poll without a `ResourceWait`.
pub(crate) const NO_RESOURCE: u32 = u32::MAX - 2;

/// Longest delay the latency histogram records (1 hour); longer ones are clamped.
const HIST_MAX_NS: u64 = 3_600_000_000_000;

/// Totals of one spawn site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SiteAcc {
    pub(crate) tasks: u64,
    pub(crate) polls: u64,
    pub(crate) busy_ns: u64,
    pub(crate) sched_ns: u64,
    pub(crate) idle_ns: u64,
    pub(crate) wakes: u64,
}

/// Idle time attributed to one resource kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceAcc {
    pub(crate) idle_ns: u64,
    pub(crate) waits: u64,
}

/// What the analysis remembers about a live task.
#[derive(Clone, Debug)]
struct TaskState {
    site: u32,
    /// Start of the running poll (for polls without a worker index).
    polling_since: Option<u64>,
    /// End of the last poll (the task is idle since then).
    idle_since: Option<u64>,
    /// When the task became runnable (spawned, or woken while idle).
    runnable_since: Option<u64>,
    /// Woken while being polled: runnable again from that poll's end.
    woken_in_poll: bool,
    /// Resource kind of the last `ResourceWait` of the current poll.
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
#[derive(Clone, Debug)]
pub(crate) struct State {
    pub(crate) config: AnalysisConfig,
    pub(crate) slow_ns: u64,
    pub(crate) events: u64,
    pub(crate) by_kind: [u64; 15],
    pub(crate) tasks_seen: u64,
    pub(crate) untracked_tasks: u64,
    tasks: HashMap<u64, TaskState>,
    pub(crate) sites: BTreeMap<u32, SiteAcc>,
    pub(crate) resources: BTreeMap<u32, ResourceAcc>,
    pub(crate) latency: Option<Histogram<u64>>,
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
        // Cannot fail for these constant bounds; `None` would only disable the percentiles.
        let latency = Histogram::new_with_bounds(1, HIST_MAX_NS, 3).ok();
        State {
            slow_ns: u64::try_from(config.slow_poll_threshold.as_nanos()).unwrap_or(u64::MAX),
            events: 0,
            by_kind: [0; 15],
            tasks_seen: 0,
            untracked_tasks: 0,
            tasks: HashMap::new(),
            sites: BTreeMap::new(),
            resources: BTreeMap::new(),
            latency,
            worst_delays: TopK::new(config.top_n),
            slow_polls: 0,
            worst_polls: TopK::new(config.top_n),
            open_sections: HashMap::new(),
            sections: Default::default(),
            timeline: Timeline::new(config.max_utilization_points),
            config,
        }
    }

    /// The site key to account `site` under (bounded number of keys).
    fn site_key(&mut self, site: u32) -> u32 {
        if self.sites.contains_key(&site) || self.sites.len() < self.config.max_keys {
            site
        } else {
            OTHER
        }
    }

    fn site_mut(&mut self, site: u32) -> &mut SiteAcc {
        let key = self.site_key(site);
        self.sites.entry(key).or_default()
    }

    /// Make sure `task` has state; returns whether it is tracked. A task
    /// first seen by its `Spawn` (`spawned`) is counted even when it does not
    /// fit; one first seen later only when it fits (it cannot be told apart
    /// from an untracked task seen again).
    fn ensure_task(&mut self, task: u64, site: u32, spawned: Option<u64>) -> bool {
        if self.tasks.contains_key(&task) {
            return true;
        }
        let full = self.tasks.len() >= self.config.max_tracked_tasks;
        if full && spawned.is_none() {
            return false;
        }
        self.tasks_seen += 1;
        self.site_mut(site).tasks += 1;
        if full {
            self.untracked_tasks += 1;
            return false;
        }
        let runnable_since = spawned;
        self.tasks.insert(
            task,
            TaskState {
                site,
                polling_since: None,
                idle_since: None,
                runnable_since,
                woken_in_poll: false,
                resource: None,
            },
        );
        true
    }

    /// Process one event.
    pub(crate) fn event(&mut self, e: &Event) {
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
            EventKind::Terminate => {
                self.tasks.remove(&e.task);
            }
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
        if let Some(t) = self.tasks.get_mut(&task) {
            // A second Spawn of a live task: extra information (the site).
            if t.site == UNKNOWN && site != UNKNOWN {
                t.site = site;
                if let Some(acc) = self.sites.get_mut(&UNKNOWN) {
                    acc.tasks = acc.tasks.saturating_sub(1);
                }
                self.site_mut(site).tasks += 1;
            }
            return;
        }
        self.ensure_task(task, site, Some(ts));
    }

    fn poll_start(&mut self, e: &Event, ts: u64) {
        if e.aux != NO_WORKER {
            self.timeline.poll_start(e.aux, e.task, ts);
        }
        if !self.ensure_task(e.task, UNKNOWN, None) {
            return;
        }
        let Some(t) = self.tasks.get_mut(&e.task) else {
            return;
        };
        let delay = if e.arg != NO_VALUE {
            Some(e.arg)
        } else {
            t.runnable_since.map(|r| ts.saturating_sub(r))
        };
        let idle = t.idle_since.map(|end| {
            let gap = ts.saturating_sub(end);
            match (t.runnable_since, delay) {
                (Some(r), _) if e.arg == NO_VALUE => r.saturating_sub(end).min(gap),
                (_, Some(d)) => gap.saturating_sub(d),
                _ => gap,
            }
        });
        let resource = t.resource.take().unwrap_or(NO_RESOURCE);
        let site = t.site;
        t.polling_since = Some(ts);
        t.idle_since = None;
        t.runnable_since = None;
        t.woken_in_poll = false;

        let acc = self.site_mut(site);
        acc.polls += 1;
        if let Some(d) = delay {
            acc.sched_ns = acc.sched_ns.saturating_add(d);
        }
        if let Some(idle) = idle {
            acc.idle_ns = acc.idle_ns.saturating_add(idle);
            let key = if self.resources.contains_key(&resource)
                || self.resources.len() < self.config.max_keys
            {
                resource
            } else {
                OTHER
            };
            let r = self.resources.entry(key).or_default();
            r.idle_ns = r.idle_ns.saturating_add(idle);
            r.waits += 1;
        }
        if let Some(d) = delay {
            if let Some(h) = &mut self.latency {
                h.saturating_record(d.clamp(1, HIST_MAX_NS));
            }
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
        let from_worker = if e.aux != NO_WORKER {
            self.timeline
                .poll_end(e.aux, ts)
                .filter(|(_, task)| *task == e.task)
                .map(|(start, _)| start)
        } else {
            None
        };
        let mut site = UNKNOWN;
        let mut start = from_worker;
        if let Some(t) = self.tasks.get_mut(&e.task) {
            start = start.or(t.polling_since);
            site = t.site;
            t.polling_since = None;
            t.idle_since = Some(ts);
            if t.woken_in_poll {
                t.runnable_since = Some(ts);
                t.woken_in_poll = false;
            }
        }
        let Some(start) = start else { return };
        let dur = ts.saturating_sub(start);
        if self.tasks.contains_key(&e.task) {
            let acc = self.site_mut(site);
            acc.busy_ns = acc.busy_ns.saturating_add(dur);
        }
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
        let site = t.site;
        if t.polling_since.is_some() {
            t.woken_in_poll = true;
        } else if t.runnable_since.is_none() {
            t.runnable_since = Some(ts);
        }
        self.site_mut(site).wakes += 1;
    }

    /// Build the report (see `report.rs`).
    pub(crate) fn report(&self, registry: &Registry) -> super::Report {
        super::report::build(self, registry)
    }
}
