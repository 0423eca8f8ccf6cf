//! Task metrics from the recorder's event stream: a [`Sink`] feeding
//! OpenTelemetry histograms and counters.
//!
//! It runs on the recorder's consumer thread (never on application threads)
//! and derives, per task, the same intervals as the core aggregator:
//! - poll duration: `PollStart` to `PollEnd` on one thread;
//! - schedule duration: Tokio's schedule latency when the hooks report it,
//!   else runnable time (spawn or wake to the next poll);
//! - idle duration: end of a poll to the wake that made the task runnable
//!   again (or, hooks only, to the moment Tokio says it was scheduled, or to
//!   the next poll when schedule-latency tracking is off).

use std::time::Duration;
use taskline_core::IdMap;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter};
use taskline_core::Registry;
use taskline_core::Sink;
use taskline_core::{Event, EventKind, NO_VALUE};

/// Attribute holding the spawn site (`file:line:col`) when
/// [`TaskMetricsConfig::by_spawn_site`] is on.
pub const SPAWN_SITE: &str = "tokio.task.spawn.site";
/// Value of [`SPAWN_SITE`] past [`TaskMetricsConfig::max_spawn_sites`], and
/// for tasks whose spawn the sink did not see.
pub const OTHER_SITE: &str = "other";

/// Default histogram boundaries in seconds: 1 µs to 10 s, 1-2.5-5 steps.
pub const DEFAULT_BOUNDARIES: [f64; 22] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Configuration of a [`TaskMetricsSink`].
#[derive(Clone, Debug)]
pub struct TaskMetricsConfig {
    /// Polls at least this long count in `tokio.task.slow_polls`. Default 10 ms.
    pub slow_poll_threshold: Duration,
    /// Add the [`SPAWN_SITE`] attribute. Default off.
    pub by_spawn_site: bool,
    /// Distinct spawn sites given their own series; later ones are
    /// [`OTHER_SITE`]. Default 64.
    pub max_spawn_sites: usize,
    /// Live tasks whose state is kept; tasks spawned past it are counted but
    /// their intervals not measured. Default 65536.
    pub max_tracked_tasks: usize,
    /// Histogram bucket boundaries in seconds. Default [`DEFAULT_BOUNDARIES`].
    pub boundaries: Vec<f64>,
    /// Attributes added to every data point (e.g. `tokio.runtime.name`).
    pub attributes: Vec<KeyValue>,
}

impl Default for TaskMetricsConfig {
    fn default() -> Self {
        TaskMetricsConfig {
            slow_poll_threshold: Duration::from_millis(10),
            by_spawn_site: false,
            max_spawn_sites: 64,
            max_tracked_tasks: 65_536,
            boundaries: DEFAULT_BOUNDARIES.to_vec(),
            attributes: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Runnable,
    Polling,
    Idle,
}

/// One attribute set's instruments, bound once: recording through a bound
/// instrument skips the SDK's per-call hashing and lookup of the attribute
/// slice (the largest consumer-side cost with attributes configured).
struct Series {
    poll: BoundHistogram<f64>,
    schedule: BoundHistogram<f64>,
    idle: BoundHistogram<f64>,
    spawned: BoundCounter<u64>,
    terminated: BoundCounter<u64>,
    slow_polls: BoundCounter<u64>,
    /// The attribute set (kept to derive the per-site sets from index 0).
    attrs: Vec<KeyValue>,
}

struct TaskState {
    /// Index into `TaskMetricsSink::series`.
    series: usize,
    phase: Phase,
    /// When the task entered `phase` (ns).
    mark: u64,
    woken_in_poll: bool,
}

/// Feeds `tokio.task.*` histograms and counters from the recorder's events.
///
/// ```
/// use taskline_otel::task::{TaskMetricsConfig, TaskMetricsSink};
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "taskline");
/// let recorder = taskline_core::Recorder::with_defaults();
/// recorder.add_sink(TaskMetricsSink::new(&meter, TaskMetricsConfig::default()));
/// # recorder.shutdown();
/// ```
pub struct TaskMetricsSink {
    poll: Histogram<f64>,
    schedule: Histogram<f64>,
    idle: Histogram<f64>,
    spawned: Counter<u64>,
    terminated: Counter<u64>,
    slow_polls: Counter<u64>,
    slow_ns: u64,
    by_site: bool,
    max_sites: usize,
    max_tasks: usize,
    /// Bound instruments per attribute set; index 0 is the [`OTHER_SITE`]
    /// (or site-less) series.
    series: Vec<Series>,
    /// Registry site id -> index into `series`.
    site_series: IdMap<u32, usize>,
    tasks: IdMap<u64, TaskState>,
    /// Per recorder thread: the task being polled and since when.
    polling: Vec<(u64, u64)>,
}

impl std::fmt::Debug for TaskMetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskMetricsSink")
            .field("series", &self.series.len())
            .field("tracked_tasks", &self.tasks.len())
            .finish()
    }
}

impl TaskMetricsSink {
    /// Creates the instruments on `meter`; add the sink to a recorder with
    /// [`Recorder::add_sink`](taskline_core::Recorder::add_sink).
    pub fn new(meter: &Meter, config: TaskMetricsConfig) -> Self {
        let hist = |name: &'static str, desc: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(desc)
                .with_boundaries(config.boundaries.clone())
                .build()
        };
        let counter = |name: &'static str, unit: &'static str, desc: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(desc)
                .build()
        };
        let mut base = config.attributes.clone();
        if config.by_spawn_site {
            base.push(KeyValue::new(SPAWN_SITE, OTHER_SITE));
        }
        let mut sink = TaskMetricsSink {
            poll: hist("tokio.task.poll.duration", "Duration of one task poll."),
            schedule: hist(
                "tokio.task.schedule.duration",
                "Time a task waited between becoming runnable and being polled.",
            ),
            idle: hist(
                "tokio.task.idle.duration",
                "Time a task waited to be woken after a poll returned Pending.",
            ),
            spawned: counter("tokio.task.spawned", "{task}", "Tasks spawned."),
            terminated: counter(
                "tokio.task.terminated",
                "{task}",
                "Tasks terminated (completed, cancelled or panicked).",
            ),
            slow_polls: counter(
                "tokio.task.slow_polls",
                "{poll}",
                "Polls at least as long as the slow-poll threshold.",
            ),
            slow_ns: u64::try_from(config.slow_poll_threshold.as_nanos()).unwrap_or(u64::MAX),
            by_site: config.by_spawn_site,
            max_sites: config.max_spawn_sites,
            max_tasks: config.max_tracked_tasks,
            series: Vec::new(),
            site_series: IdMap::default(),
            tasks: IdMap::default(),
            polling: Vec::new(),
        };
        sink.add_series(base);
        sink
    }

    /// Binds the instruments to a new attribute set; returns its index.
    fn add_series(&mut self, attrs: Vec<KeyValue>) -> usize {
        self.series.push(Series {
            poll: self.poll.bind(&attrs),
            schedule: self.schedule.bind(&attrs),
            idle: self.idle.bind(&attrs),
            spawned: self.spawned.bind(&attrs),
            terminated: self.terminated.bind(&attrs),
            slow_polls: self.slow_polls.bind(&attrs),
            attrs,
        });
        self.series.len() - 1
    }

    /// The series index of a registry site id (bounded by `max_spawn_sites`).
    fn series_of(&mut self, site: u32, registry: &Registry) -> usize {
        if !self.by_site || site == Registry::OVERFLOW {
            return 0;
        }
        if let Some(&i) = self.site_series.get(&site) {
            return i;
        }
        if self.series.len() > self.max_sites {
            // Remember the overflow too, so the registry is not asked again.
            if self.site_series.len() < self.max_sites.saturating_mul(16).max(1024) {
                self.site_series.insert(site, 0);
            }
            return 0;
        }
        let Some(label) = registry.site(site).map(|s| s.to_string()) else {
            return 0;
        };
        let mut attrs = self.series[0].attrs.clone();
        if let Some(kv) = attrs.last_mut() {
            *kv = KeyValue::new(SPAWN_SITE, label);
        }
        let i = self.add_series(attrs);
        self.site_series.insert(site, i);
        i
    }

    fn event(&mut self, e: &Event, registry: &Registry) {
        match e.kind() {
            Some(EventKind::Spawn) => self.spawn(e, registry),
            Some(EventKind::Wake) => self.wake(e),
            Some(EventKind::PollStart) => self.poll_start(e),
            Some(EventKind::PollEnd) => self.poll_end(e),
            Some(EventKind::Terminate) => {
                if let Some(t) = self.tasks.remove(&e.task) {
                    self.series[t.series].terminated.add(1);
                }
            }
            _ => {}
        }
    }

    fn spawn(&mut self, e: &Event, registry: &Registry) {
        if self.tasks.contains_key(&e.task) {
            return; // the second source of the same spawn
        }
        let series = self.series_of(e.aux, registry);
        self.series[series].spawned.add(1);
        if self.tasks.len() < self.max_tasks {
            self.tasks.insert(
                e.task,
                TaskState {
                    series,
                    phase: Phase::Runnable,
                    mark: e.ts_ns,
                    woken_in_poll: false,
                },
            );
        }
    }

    fn wake(&mut self, e: &Event) {
        let Some(t) = self.tasks.get_mut(&e.task) else {
            return;
        };
        match t.phase {
            Phase::Idle => {
                let d = e.ts_ns.saturating_sub(t.mark);
                t.phase = Phase::Runnable;
                t.mark = e.ts_ns;
                let s = t.series;
                self.series[s].idle.record(secs(d));
            }
            Phase::Polling => t.woken_in_poll = true,
            Phase::Runnable => {}
        }
    }

    fn poll_start(&mut self, e: &Event) {
        let th = e.thread as usize;
        if self.polling.len() <= th {
            self.polling.resize(th + 1, (0, 0));
        }
        self.polling[th] = (e.task, e.ts_ns);
        let latency = (e.arg != NO_VALUE).then_some(e.arg);
        let Some(t) = self.tasks.get_mut(&e.task) else {
            if let Some(l) = latency {
                self.series[0].schedule.record(secs(l));
            }
            return;
        };
        let (sched, idle) = match t.phase {
            Phase::Runnable => (
                Some(latency.unwrap_or(e.ts_ns.saturating_sub(t.mark))),
                None,
            ),
            Phase::Idle => {
                // No wake seen (hooks only): Tokio's latency, when tracked,
                // says when it was scheduled; without it the whole gap
                // between polls counts as idle (as in the core aggregator).
                let at = latency.map_or(e.ts_ns, |l| e.ts_ns.saturating_sub(l));
                (latency, Some(at.saturating_sub(t.mark)))
            }
            Phase::Polling => (None, None),
        };
        t.phase = Phase::Polling;
        t.mark = e.ts_ns;
        t.woken_in_poll = false;
        let s = t.series;
        if let Some(d) = sched {
            self.series[s].schedule.record(secs(d));
        }
        if let Some(d) = idle {
            self.series[s].idle.record(secs(d));
        }
    }

    fn poll_end(&mut self, e: &Event) {
        let th = e.thread as usize;
        let started = match self.polling.get_mut(th) {
            Some(slot) if slot.0 == e.task && e.task != 0 => {
                let start = slot.1;
                *slot = (0, 0);
                Some(start)
            }
            _ => None,
        };
        let mut series = 0;
        if let Some(t) = self.tasks.get_mut(&e.task) {
            series = t.series;
            if t.phase == Phase::Polling {
                t.phase = if t.woken_in_poll {
                    Phase::Runnable
                } else {
                    Phase::Idle
                };
                t.mark = e.ts_ns;
            }
        }
        if let Some(start) = started {
            let d = e.ts_ns.saturating_sub(start);
            let s = &self.series[series];
            s.poll.record(secs(d));
            if d >= self.slow_ns {
                s.slow_polls.add(1);
            }
        }
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 * 1e-9
}

impl Sink for TaskMetricsSink {
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        for e in events {
            self.event(e, registry);
        }
    }
}
