//! Task metrics from the recorder's event stream: a [`Sink`] feeding
//! OpenTelemetry histograms and counters.
//!
//! It runs on the recorder's consumer thread (never on application threads)
//! and derives, per task, the same intervals as the core aggregator, by the
//! same rules (the core's [`TaskTracker`]):
//! - poll duration: `PollStart` to `PollEnd` on one thread;
//! - schedule duration: Tokio's schedule latency when the hooks report it,
//!   else runnable time (spawn or wake to the next poll);
//! - idle duration: end of a poll to the wake that made the task runnable
//!   again (or, hooks only, to the moment Tokio says it was scheduled, or to
//!   the next poll when schedule-latency tracking is off), with the
//!   [`REASON`] attribute saying why the task waited: the
//!   [`WakeReason`] the core's rule gives the wake (see its docs for how
//!   each reason is decided; an idle time ended without a recorded wake is
//!   `unknown`);
//! - a slow poll: longer than the recorder's
//!   [`RecorderConfig::slow_poll_threshold`] (the one threshold, see
//!   [`TaskMetricsSink::for_recorder`]).
//!
//! With [`TaskMetricsConfig::by_spawn_site`], every poll counts under its
//! task's spawn site, including the last poll of a task, inside which Tokio
//! reports its termination: the poll keeps the series its task had when it
//! started.
//!
//! Cardinality: the idle histogram has one series per attribute set and
//! reason that occurred, at most [`WakeReason::COUNT`] (7) per spawn-site
//! series, so at most `7 * (max_spawn_sites + 1)`; each is bound the first
//! time its reason is seen (a series no idle period ended for is never
//! exported), then recorded through by the reason's index.

use taskline_core::IdMap;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter};
use taskline_core::Registry;
use taskline_core::Sink;
use taskline_core::{
    Event, RecorderConfig, SlowPollThreshold, TaskTracker, Transition, WakeReason,
};

/// Attribute holding the spawn site (`file:line:col`) when
/// [`TaskMetricsConfig::by_spawn_site`] is on.
pub const SPAWN_SITE: &str = "tokio.task.spawn.site";
/// Value of [`SPAWN_SITE`] past [`TaskMetricsConfig::max_spawn_sites`], and
/// for tasks whose spawn the sink did not see.
pub const OTHER_SITE: &str = "other";
/// Attribute of `tokio.task.idle.duration` naming why the idle period
/// ended: a [`WakeReason::as_str`] (`sync`, `io`, `timer`, `blocking`,
/// `foreign`, `yield`, `unknown`), decided by the core's one rule (see
/// [`WakeReason`]).
///
/// ```
/// # use opentelemetry::metrics::MeterProvider as _;
/// use taskline_core::{Event, EventKind, Registry, Sink};
/// use taskline_otel::task::{REASON, TaskMetricsConfig, TaskMetricsSink};
/// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
/// use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
///
/// let exporter = InMemoryMetricExporter::default();
/// let provider = SdkMeterProvider::builder()
///     .with_reader(PeriodicReader::builder(exporter.clone()).build())
///     .build();
/// let mut sink = TaskMetricsSink::new(&provider.meter("doc"), TaskMetricsConfig::default());
/// // Task 1 is polled on thread 0; task 2, polled on thread 1, wakes it 2 ms later.
/// let ev = |kind, ts, task, thread, arg| {
///     let mut e = Event::new(kind, ts, task);
///     (e.thread, e.arg) = (thread, arg);
///     e
/// };
/// let none = taskline_core::NO_VALUE;
/// sink.on_events(&[
///     ev(EventKind::Spawn, 0, 1, 0, 0),
///     ev(EventKind::Spawn, 0, 2, 0, 0),
///     ev(EventKind::PollStart, 10, 1, 0, none),
///     ev(EventKind::PollEnd, 20, 1, 0, 0),
///     ev(EventKind::PollStart, 2_000_000, 2, 1, none),
///     ev(EventKind::Wake, 2_000_020, 1, 1, 2),
///     ev(EventKind::PollEnd, 2_000_030, 2, 1, 0),
/// ], &Registry::new());
/// provider.force_flush()?;
/// let metrics = exporter.get_finished_metrics()?;
/// let idle = metrics[0].scope_metrics().flat_map(|s| s.metrics())
///     .find(|m| m.name() == "tokio.task.idle.duration").unwrap();
/// let AggregatedMetrics::F64(MetricData::Histogram(h)) = idle.data() else { panic!() };
/// let point = h.data_points().next().unwrap();
/// assert_eq!(point.count(), 1);
/// let reason = point.attributes().find(|kv| kv.key.as_str() == REASON).unwrap();
/// assert_eq!(reason.value.as_str(), "sync"); // woken from inside task 2's poll
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const REASON: &str = "reason";

/// Default histogram boundaries in seconds: 1 µs to 10 s, 1-2.5-5 steps.
pub const DEFAULT_BOUNDARIES: [f64; 22] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Configuration of a [`TaskMetricsSink`]. The slow-poll threshold is the
/// recorder's ([`RecorderConfig::slow_poll_threshold`], see
/// [`TaskMetricsSink::for_recorder`]), not part of this.
#[derive(Clone, Debug)]
pub struct TaskMetricsConfig {
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
            by_spawn_site: false,
            max_spawn_sites: 64,
            max_tracked_tasks: 65_536,
            boundaries: DEFAULT_BOUNDARIES.to_vec(),
            attributes: Vec::new(),
        }
    }
}

/// One attribute set's instruments, bound once: recording through a bound
/// instrument skips the SDK's per-call hashing and lookup of the attribute
/// slice (the largest consumer-side cost with attributes configured).
struct Series {
    poll: BoundHistogram<f64>,
    schedule: BoundHistogram<f64>,
    /// The idle histogram per [`WakeReason::index`], bound at the reason's
    /// first idle period (with [`REASON`] added to `attrs`).
    idle: [Option<BoundHistogram<f64>>; WakeReason::COUNT],
    spawned: BoundCounter<u64>,
    terminated: BoundCounter<u64>,
    slow_polls: BoundCounter<u64>,
    /// The attribute set (kept to derive the per-site sets from index 0).
    attrs: Vec<KeyValue>,
}

/// Feeds `tokio.task.*` histograms and counters from the recorder's events.
///
/// ```
/// use taskline_otel::task::{TaskMetricsConfig, TaskMetricsSink};
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "taskline");
/// let recorder = taskline_core::Recorder::with_defaults();
/// recorder.add_sink(TaskMetricsSink::for_recorder(
///     &meter,
///     recorder.config(),
///     TaskMetricsConfig::default(),
/// ));
/// # recorder.shutdown();
/// ```
pub struct TaskMetricsSink {
    inst: Instruments,
    /// The task lifecycle; each task's value is its index into `inst.series`.
    tasks: TaskTracker<usize>,
}

/// The instruments and their bound series (apart from the task state, so
/// that a new task's series can be found while the tracker applies its spawn).
struct Instruments {
    poll: Histogram<f64>,
    schedule: Histogram<f64>,
    idle: Histogram<f64>,
    spawned: Counter<u64>,
    terminated: Counter<u64>,
    slow_polls: Counter<u64>,
    by_site: bool,
    max_sites: usize,
    /// Bound instruments per attribute set; index 0 is the [`OTHER_SITE`]
    /// (or site-less) series.
    series: Vec<Series>,
    /// Registry site id -> index into `series`.
    site_series: IdMap<u32, usize>,
}

impl std::fmt::Debug for TaskMetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskMetricsSink")
            .field("series", &self.inst.series.len())
            .field("tracked_tasks", &self.tasks.len())
            .finish()
    }
}

impl TaskMetricsSink {
    /// [`for_recorder`](Self::for_recorder) with the default
    /// [`RecorderConfig`] (its 10 ms slow-poll threshold): for a recorder
    /// with another threshold, use `for_recorder`.
    pub fn new(meter: &Meter, config: TaskMetricsConfig) -> Self {
        Self::for_recorder(meter, &RecorderConfig::default(), config)
    }

    /// Creates the instruments on `meter` for a recorder configured with
    /// `recorder` (its `slow_poll_threshold` classifies slow polls, as in
    /// the recorder's snapshot); add the sink to that recorder with
    /// [`Recorder::add_sink`](taskline_core::Recorder::add_sink).
    pub fn for_recorder(
        meter: &Meter,
        recorder: &RecorderConfig,
        config: TaskMetricsConfig,
    ) -> Self {
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
        let mut inst = Instruments {
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
                "Polls longer than the slow-poll threshold.",
            ),
            by_site: config.by_spawn_site,
            max_sites: config.max_spawn_sites,
            series: Vec::new(),
            site_series: IdMap::default(),
        };
        inst.add_series(base);
        TaskMetricsSink {
            inst,
            tasks: TaskTracker::new(config.max_tracked_tasks, SlowPollThreshold::of(recorder)),
        }
    }
}

impl Instruments {
    /// Binds the instruments to a new attribute set; returns its index.
    fn add_series(&mut self, attrs: Vec<KeyValue>) -> usize {
        self.series.push(Series {
            poll: self.poll.bind(&attrs),
            schedule: self.schedule.bind(&attrs),
            idle: Default::default(),
            spawned: self.spawned.bind(&attrs),
            terminated: self.terminated.bind(&attrs),
            slow_polls: self.slow_polls.bind(&attrs),
            attrs,
        });
        self.series.len() - 1
    }

    /// Records an idle period of `ns` of series `series` ended for `reason`.
    #[inline]
    fn record_idle(&mut self, series: usize, reason: WakeReason, ns: u64) {
        let Some(s) = self.series.get_mut(series) else {
            return;
        };
        let idle = &self.idle;
        s.idle[reason.index()]
            .get_or_insert_with(|| {
                let mut attrs = Vec::with_capacity(s.attrs.len() + 1);
                attrs.extend_from_slice(&s.attrs);
                attrs.push(KeyValue::new(REASON, reason.as_str()));
                idle.bind(&attrs)
            })
            .record(secs(ns));
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
}

impl TaskMetricsSink {
    #[inline]
    fn event(&mut self, e: &Event, registry: &Registry) {
        let inst = &mut self.inst;
        // A new task's series is found once, at its spawn; the tracker
        // keeps it with the task, and with the task's open poll.
        match self
            .tasks
            .apply(e, registry, |site| inst.series_of(site, registry))
        {
            Transition::Spawned { value, .. } => inst.series[value].spawned.add(1),
            Transition::PollStarted {
                latency_ns,
                started,
                value,
                ..
            } => match (started, value) {
                (Some(p), Some(series)) => {
                    if let Some(d) = p.scheduled_ns {
                        inst.series[series].schedule.record(secs(d));
                    }
                    // Idle without a recorded wake (hooks only): no reason known.
                    if let Some(d) = p.idle_ns {
                        inst.record_idle(series, WakeReason::Unknown, d);
                    }
                }
                _ => {
                    if let Some(l) = latency_ns {
                        inst.series[0].schedule.record(secs(l));
                    }
                }
            },
            Transition::Polled {
                duration_ns,
                slow,
                value,
                ..
            } => {
                let s = &inst.series[value.unwrap_or(0)];
                s.poll.record(secs(duration_ns));
                if slow {
                    s.slow_polls.add(1);
                }
            }
            Transition::Woken {
                cause,
                woken: Some(w),
                value: Some(series),
                ..
            } => {
                if let Some(d) = w.idle_ns() {
                    inst.record_idle(series, cause.reason, d);
                }
            }
            Transition::Terminated { value, .. } => inst.series[value].terminated.add(1),
            _ => {}
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
