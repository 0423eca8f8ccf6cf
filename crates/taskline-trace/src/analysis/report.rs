//! The [`Report`] of the analyses: a serializable struct and its text form.
//!
//! Units are in the field names: `_ms` milliseconds, `_us` microseconds,
//! utilizations are fractions in `[0, 1]`. Times called `at_ms` are
//! milliseconds since the first event of the stream. Every list has a fixed
//! order (worst first, ties by name / id), so a given stream always gives
//! the same report.

use std::fmt;

use serde::Serialize;
use taskline_core::Registry;
use taskline_core::{EventKind, NO_WORKER};

use super::MMU_WINDOWS;
use super::state::{NO_RESOURCE, OTHER, State};

/// Everything the analyses found in one event stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Timestamp of the first event (ns since the recorder's epoch).
    pub start_ns: u64,
    /// Timestamp of the last event.
    pub end_ns: u64,
    /// `end - start` in milliseconds.
    pub duration_ms: f64,
    /// Events analyzed.
    pub events: u64,
    /// Events per kind (kinds with no event left out; `unknown` for bytes naming no kind).
    pub events_by_kind: Vec<EventCount>,
    /// Tasks spawned (each once, whichever source reported it).
    pub tasks_seen: u64,
    /// Tasks spawned while `AnalysisConfig::max_tracked_tasks` were live:
    /// counted, not analyzed (always 0 with the default, unbounded analysis).
    pub untracked_tasks: u64,
    /// How many rows the text form shows per table.
    pub top_n: usize,
    /// Per spawn site, most busy first.
    pub sites: Vec<SiteRow>,
    /// Scheduling latency (wake or spawn to poll).
    pub scheduling: SchedulingProfile,
    /// Where tasks waited.
    pub blocking: BlockingProfile,
    /// Worker utilization and the MMU curve.
    pub workers: WorkerProfile,
    /// Polls longer than the threshold.
    pub slow_polls: SlowPollProfile,
    /// User regions (application spans, region futures) per name, most
    /// total time first.
    pub regions: Vec<super::RegionRow>,
}

/// Count of one event kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventCount {
    /// Kind name (`Spawn`, `PollStart`, ...).
    pub kind: String,
    /// Events of that kind.
    pub count: u64,
}

/// One spawn site's totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteRow {
    /// `file:line:col`, or `<unknown>`.
    pub site: String,
    /// The first task name seen at the site, else the location.
    pub name: String,
    /// Tasks spawned there.
    pub tasks: u64,
    /// Polls of those tasks.
    pub polls: u64,
    /// Total execution (busy) time.
    pub busy_ms: f64,
    /// Average execution time per task.
    pub avg_busy_per_task_ms: f64,
    /// Average poll duration.
    pub avg_poll_us: f64,
    /// Total scheduling wait.
    pub sched_wait_ms: f64,
    /// Total idle (blocked) time.
    pub idle_ms: f64,
    /// Wakes of those tasks.
    pub wakes: u64,
    /// Polls longer than the slow-poll threshold.
    pub slow_polls: u64,
}

/// Scheduling latency distribution and worst cases.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchedulingProfile {
    /// Samples (polls with a known delay).
    pub samples: u64,
    /// Median (histogram precision: 2 significant digits, 1%).
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest delay (histogram precision).
    pub max_us: f64,
    /// The worst delays, one per task, worst first.
    pub worst: Vec<LatencyEntry>,
}

/// One task's worst scheduling delay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyEntry {
    /// Tokio task id.
    pub task: u64,
    /// Its spawn site.
    pub site: String,
    /// The delay (exact).
    pub delay_us: f64,
    /// When the delayed poll started.
    pub at_ms: f64,
}

/// Where tasks waited while idle.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockingProfile {
    /// Idle time by the resource kind the task waited on, most first.
    pub by_resource: Vec<ResourceRow>,
    /// Idle time by spawn site, most first (sites with idle time only).
    pub by_site: Vec<SiteIdleRow>,
    /// Blocking sections (`spawn_blocking`, `block_in_place`).
    pub sections: Vec<BlockingSectionRow>,
}

/// Idle time attributed to one resource kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceRow {
    /// Resource kind (`Semaphore`, `Sleep`, ...), `(none)` when the poll
    /// recorded no resource, `(other)` beyond the configured limit.
    pub resource: String,
    /// Idle periods ended.
    pub waits: u64,
    /// Total idle time.
    pub idle_ms: f64,
}

/// Idle time of one spawn site.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteIdleRow {
    /// Spawn site.
    pub site: String,
    /// Total idle time of its tasks.
    pub idle_ms: f64,
}

/// Totals of one kind of blocking section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockingSectionRow {
    /// `spawn_blocking` or `block_in_place`.
    pub kind: String,
    /// Sections ended.
    pub count: u64,
    /// Their total duration.
    pub total_ms: f64,
}

/// Worker utilization.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerProfile {
    /// One row per worker index seen, by index.
    pub workers: Vec<WorkerRow>,
    /// Minimum worker utilization per window size (windows longer than the run left out).
    pub mmu: Vec<MmuPoint>,
    /// Whether the timeline was coalesced to stay within its memory bound
    /// (then `max_error` is non-zero).
    pub coalesced: bool,
}

/// One worker over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerRow {
    /// Tokio worker index (runtimes in one stream share indexes).
    pub worker: u32,
    /// Polls completed.
    pub polls: u64,
    /// Time spent polling.
    pub busy_ms: f64,
    /// `busy / run duration`.
    pub utilization: f64,
}

/// One point of the MMU curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MmuPoint {
    /// Window length.
    pub window_ms: f64,
    /// Minimum over all windows of that length of the fraction of worker-time spent polling.
    pub utilization: f64,
    /// Start of the worst window.
    pub worst_at_ms: f64,
    /// Upper bound of the absolute error of `utilization`.
    pub max_error: f64,
}

/// Slow polls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlowPollProfile {
    /// The threshold.
    pub threshold_ms: f64,
    /// Polls longer than the threshold.
    pub count: u64,
    /// The longest, worst first.
    pub worst: Vec<SlowPoll>,
}

/// One slow poll.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlowPoll {
    /// Tokio task id.
    pub task: u64,
    /// Its spawn site.
    pub site: String,
    /// Worker index, if it ran on a worker.
    pub worker: Option<u32>,
    /// When the poll started.
    pub start_ms: f64,
    /// How long it ran.
    pub duration_ms: f64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The location of a site, as the aggregator names it.
fn site_name(registry: &Registry, site: u32) -> String {
    registry
        .site(site)
        .map_or_else(|| "<unknown>".to_owned(), |s| s.to_string())
}

fn resource_name(registry: &Registry, id: u32) -> String {
    match id {
        NO_RESOURCE => "(none)".to_owned(),
        OTHER => "(other)".to_owned(),
        id => registry
            .string(id)
            .map_or_else(|| format!("(string #{id})"), |s| s.to_string()),
    }
}

/// Build the report of `state`.
pub(super) fn build(state: &State, registry: &Registry) -> Report {
    let start = state.timeline.start().unwrap_or(0);
    let end = state.timeline.end().max(start);
    let span = end - start;
    let top_n = state.config.top_n;

    let mut events_by_kind = Vec::new();
    for k in EventKind::ALL {
        let count = state.by_kind[k as usize];
        if count > 0 {
            events_by_kind.push(EventCount {
                kind: format!("{k:?}"),
                count,
            });
        }
    }
    if state.by_kind[0] > 0 {
        events_by_kind.push(EventCount {
            kind: "unknown".to_owned(),
            count: state.by_kind[0],
        });
    }

    let snap = state.agg.snapshot(registry);
    let mut sites: Vec<SiteRow> = snap
        .sites
        .iter()
        .map(|a| SiteRow {
            site: a.location.clone(),
            name: a.name.clone(),
            tasks: a.spawned,
            polls: a.polls,
            busy_ms: ms(a.busy_ns),
            avg_busy_per_task_ms: if a.spawned > 0 {
                ms(a.busy_ns) / a.spawned as f64
            } else {
                0.0
            },
            avg_poll_us: if a.polls > 0 {
                us(a.busy_ns) / a.polls as f64
            } else {
                0.0
            },
            sched_wait_ms: ms(a.scheduled_ns),
            idle_ms: ms(a.idle_ns),
            wakes: a.wakes,
            slow_polls: a.slow_polls,
        })
        .collect();
    sites.sort_by(|a, b| {
        b.busy_ms
            .total_cmp(&a.busy_ms)
            .then(a.site.cmp(&b.site))
            .then(a.name.cmp(&b.name))
    });

    let mut by_site: Vec<SiteIdleRow> = sites
        .iter()
        .filter(|s| s.idle_ms > 0.0)
        .map(|s| SiteIdleRow {
            site: s.site.clone(),
            idle_ms: s.idle_ms,
        })
        .collect();
    by_site.sort_by(|a, b| b.idle_ms.total_cmp(&a.idle_ms).then(a.site.cmp(&b.site)));

    let mut by_resource: Vec<ResourceRow> = state
        .resources
        .iter()
        .map(|(id, r)| ResourceRow {
            resource: resource_name(registry, *id),
            waits: r.waits,
            idle_ms: ms(r.idle_ns),
        })
        .collect();
    by_resource.sort_by(|a, b| {
        b.idle_ms
            .total_cmp(&a.idle_ms)
            .then(a.resource.cmp(&b.resource))
    });

    let sections = ["spawn_blocking", "block_in_place"]
        .iter()
        .zip(&state.sections)
        .filter(|(_, s)| s.count > 0)
        .map(|(kind, s)| BlockingSectionRow {
            kind: (*kind).to_owned(),
            count: s.count,
            total_ms: ms(s.total_ns),
        })
        .collect();

    let h = &snap.schedule_delay;
    let scheduling = SchedulingProfile {
        samples: h.count,
        p50_us: us(h.p50),
        p90_us: us(h.p90),
        p99_us: us(h.p99),
        max_us: us(h.max),
        worst: Vec::new(),
    };
    let worst = state
        .worst_delays
        .sorted()
        .into_iter()
        .map(|d| LatencyEntry {
            task: d.neg_task.0,
            site: site_name(registry, d.site),
            delay_us: us(d.delay_ns),
            at_ms: ms(d.neg_ts.0.saturating_sub(start)),
        })
        .collect();
    let scheduling = SchedulingProfile {
        worst,
        ..scheduling
    };

    let workers = state
        .timeline
        .worker_busy()
        .map(|(worker, busy, polls)| WorkerRow {
            worker,
            polls,
            busy_ms: ms(busy),
            utilization: if span > 0 {
                busy as f64 / span as f64
            } else {
                0.0
            },
        })
        .collect();
    let windows: Vec<u64> = MMU_WINDOWS.iter().map(|d| d.as_nanos() as u64).collect();
    let mmu = state
        .timeline
        .mmu(&windows)
        .into_iter()
        .map(|m| MmuPoint {
            window_ms: ms(m.window_ns),
            utilization: m.utilization,
            worst_at_ms: ms(m.at_ns),
            max_error: state.timeline.max_error(m.window_ns),
        })
        .collect();

    let slow_worst = state
        .worst_polls
        .sorted()
        .into_iter()
        .map(|s| SlowPoll {
            task: s.neg_task.0,
            site: site_name(registry, s.site),
            worker: (s.worker != NO_WORKER).then_some(s.worker),
            start_ms: ms(s.neg_start.0.saturating_sub(start)),
            duration_ms: ms(s.duration_ns),
        })
        .collect();

    Report {
        start_ns: start,
        end_ns: end,
        duration_ms: ms(span),
        events: state.events,
        events_by_kind,
        tasks_seen: snap.spawned,
        untracked_tasks: snap.untracked,
        top_n,
        sites,
        scheduling,
        blocking: BlockingProfile {
            by_resource,
            by_site,
            sections,
        },
        workers: WorkerProfile {
            workers,
            mmu,
            coalesced: state.timeline.is_coalesced(),
        },
        slow_polls: SlowPollProfile {
            threshold_ms: ms(state.config.slow_polls().as_ns()),
            count: state.slow_polls,
            worst: slow_worst,
        },
        regions: super::regions::rows(&snap.regions),
    }
}

/// The numeric columns of the spawn-site table: header and width, in the
/// order of [`SiteRow::cells`].
const SITE_COLUMNS: [(&str, usize); 9] = [
    ("tasks", 7),
    ("polls", 9),
    ("busy ms", 12),
    ("busy/task ms", 12),
    ("avg poll µs", 11),
    ("sched wait ms", 13),
    ("idle ms", 12),
    ("wakes", 8),
    ("slow", 6),
];

impl SiteRow {
    /// The row's numbers as the text table shows them, one per [`SITE_COLUMNS`].
    fn cells(&self) -> [String; SITE_COLUMNS.len()] {
        [
            self.tasks.to_string(),
            self.polls.to_string(),
            format!("{:.3}", self.busy_ms),
            format!("{:.3}", self.avg_busy_per_task_ms),
            format!("{:.1}", self.avg_poll_us),
            format!("{:.3}", self.sched_wait_ms),
            format!("{:.3}", self.idle_ms),
            self.wakes.to_string(),
            self.slow_polls.to_string(),
        ]
    }
}

/// At most `n` rows and a note about the rest.
fn limited<T>(f: &mut fmt::Formatter<'_>, rows: &[T], n: usize) -> Result<usize, fmt::Error> {
    if rows.len() > n {
        writeln!(f, "  ({} more not shown)", rows.len() - n)?;
    }
    Ok(rows.len().min(n))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.top_n.max(1);
        write!(
            f,
            "taskline report: {:.3} ms, {} events, {} tasks",
            self.duration_ms, self.events, self.tasks_seen
        )?;
        if self.untracked_tasks > 0 {
            write!(
                f,
                " ({} past max_tracked_tasks: counted, not analyzed)",
                self.untracked_tasks
            )?;
        }
        writeln!(f)?;
        if self.tasks_seen == 0 && !self.events_by_kind.iter().any(|k| k.kind == "PollStart") {
            writeln!(
                f,
                "no task events in this trace: Tokio's task hooks need a build with `--cfg tokio_unstable` \
                 (taskline_core::capabilities().task_events), so the recorder saw worker park/unpark only; \
                 the task tables below are empty"
            )?;
        }

        writeln!(f, "\nSpawn sites (by execution time)")?;
        write!(f, " ")?;
        for (name, width) in SITE_COLUMNS {
            write!(f, " {name:>width$}")?;
        }
        writeln!(f, "  site")?;
        for s in &self.sites[..self.sites.len().min(n)] {
            write!(f, " ")?;
            for (cell, (_, width)) in s.cells().iter().zip(SITE_COLUMNS) {
                write!(f, " {cell:>width$}")?;
            }
            writeln!(f, "  {}", s.site)?;
            if s.name != s.site {
                writeln!(f, "  {:>7} name: {}", "", s.name)?;
            }
        }
        limited(f, &self.sites, n)?;

        let s = &self.scheduling;
        writeln!(f, "\nScheduling latency ({} samples)", s.samples)?;
        writeln!(
            f,
            "  p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs",
            s.p50_us, s.p90_us, s.p99_us, s.max_us
        )?;
        for w in &s.worst[..s.worst.len().min(n)] {
            writeln!(
                f,
                "  task {:>8}  {:>12.1} µs  at {:>10.3} ms  {}",
                w.task, w.delay_us, w.at_ms, w.site
            )?;
        }

        let b = &self.blocking;
        writeln!(f, "\nBlocking profile (idle time by resource)")?;
        for r in &b.by_resource[..b.by_resource.len().min(n)] {
            writeln!(
                f,
                "  {:>12.3} ms  {:>9} waits  {}",
                r.idle_ms, r.waits, r.resource
            )?;
        }
        limited(f, &b.by_resource, n)?;
        writeln!(f, "Blocking profile (idle time by spawn site)")?;
        for r in &b.by_site[..b.by_site.len().min(n)] {
            writeln!(f, "  {:>12.3} ms  {}", r.idle_ms, r.site)?;
        }
        limited(f, &b.by_site, n)?;
        for r in &b.sections {
            writeln!(
                f,
                "  {}: {} sections, {:.3} ms",
                r.kind, r.count, r.total_ms
            )?;
        }

        let w = &self.workers;
        writeln!(f, "\nWorker utilization")?;
        for r in &w.workers {
            writeln!(
                f,
                "  worker {:>3}  {:>9} polls  {:>12.3} ms busy  {:>6.1}%",
                r.worker,
                r.polls,
                r.busy_ms,
                r.utilization * 100.0
            )?;
        }
        writeln!(
            f,
            "Minimum worker utilization (MMU){}",
            if w.coalesced { ", coalesced" } else { "" }
        )?;
        for m in &w.mmu {
            write!(
                f,
                "  {:>7.0} ms window  {:>6.1}%  (worst at {:.3} ms)",
                m.window_ms,
                m.utilization * 100.0,
                m.worst_at_ms
            )?;
            if m.max_error > 0.0 {
                write!(f, "  ±{:.1}%", m.max_error * 100.0)?;
            }
            writeln!(f)?;
        }

        let p = &self.slow_polls;
        writeln!(f, "\nSlow polls (> {:.3} ms): {}", p.threshold_ms, p.count)?;
        for s in &p.worst[..p.worst.len().min(n)] {
            let worker = s.worker.map_or_else(|| "-".to_owned(), |w| w.to_string());
            writeln!(
                f,
                "  {:>10.3} ms  task {:>8}  worker {:>3}  at {:>10.3} ms  {}",
                s.duration_ms, s.task, worker, s.start_ms, s.site
            )?;
        }
        super::regions::write_text(f, &self.regions, n)
    }
}
