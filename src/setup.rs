//! The front door: [`Taskline::builder`] starts the recorder and every output
//! asked for, installs taskline's `tracing` subscriber in front of the
//! user's stack when asked, and returns the [`Taskline`] guard. The guard
//! instruments runtimes ([`Taskline::build_runtime`]), registers their OTel
//! runtime metrics, and finishes everything when shut down or dropped: the
//! trace file gets its end marker, the flight recorder's window is brought
//! up to date, the OTLP pipeline makes its last export. One recorder feeds
//! every source, so hooks and subscriber can never disagree about where
//! events go; a second recorder mixed in by hand is reported by the
//! world check (see [`Mixing`]).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
#[cfg(feature = "trace")]
use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "otel")]
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use taskline_core::{
    ConfigError, Recorder, RecorderConfig, Snapshot, SubscriberError, TasklineLayer,
    TasklineSubscriber,
};
use tokio::runtime::{Builder, Runtime};

#[cfg(feature = "trace")]
use crate::on_demand::{OnDemand, OnDemandConfig, OnDemandError, OnDemandTrace};
use crate::world::{self, Mixing};
#[cfg(feature = "otel")]
use taskline_otel::{
    ExportStats, OtlpConfig, OtlpGuard, ProcessMetricsExporter, ProfilesCollected,
    RuntimeMetricsExporter, TaskMetricsConfig, TaskMetricsSink,
};
#[cfg(feature = "profile")]
use taskline_profile::{
    CollectorConfig, ProfileCollector, ProfileError, ProfileRuntimeExt, Profiler, ProfilerConfig,
    ProfilerGuard,
};
#[cfg(feature = "trace")]
use taskline_trace::{
    PerfettoWriter, TraceHandle, TraceOptions,
    flight::{FlightConfig, FlightError, FlightRecorder, FlightRecorderHandle},
};

/// How long [`Taskline::shutdown`] (and the guard's drop) waits for the last
/// OTLP export by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds taskline's subscriber around the user's stack once the recorder
/// exists (the stack's type is erased here, so the builder is not generic).
type TracingSetup =
    Box<dyn FnOnce(&Recorder, bool) -> Result<tracing::Dispatch, SubscriberError> + Send>;

/// Builder for [`Taskline`]; see [`Taskline::builder`].
#[must_use = "call .start() to start recording"]
pub struct TasklineBuilder {
    config: RecorderConfig,
    tracing: Option<TracingSetup>,
    resource_waits: bool,
    shutdown_timeout: Duration,
    #[cfg(feature = "trace")]
    trace_file: Option<PathBuf>,
    #[cfg(feature = "trace")]
    trace_options: TraceOptions,
    #[cfg(feature = "trace")]
    flight: Option<FlightConfig>,
    #[cfg(feature = "trace")]
    dump_on_panic: bool,
    #[cfg(feature = "trace")]
    on_demand: OnDemandConfig,
    #[cfg(feature = "otel")]
    otlp: Option<(OtlpConfig, TaskMetricsConfig)>,
    #[cfg(feature = "profile")]
    cpu_profile: Option<ProfilerConfig>,
    #[cfg(feature = "profile")]
    cpu_collector: Option<CollectorConfig>,
    #[cfg(feature = "otel")]
    process_metrics: bool,
}

impl Default for TasklineBuilder {
    fn default() -> Self {
        TasklineBuilder {
            config: RecorderConfig::default(),
            tracing: None,
            resource_waits: false,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            #[cfg(feature = "trace")]
            trace_file: None,
            #[cfg(feature = "trace")]
            trace_options: TraceOptions::default(),
            #[cfg(feature = "trace")]
            flight: None,
            #[cfg(feature = "trace")]
            dump_on_panic: false,
            #[cfg(feature = "trace")]
            on_demand: OnDemandConfig::default(),
            #[cfg(feature = "otel")]
            otlp: None,
            #[cfg(feature = "profile")]
            cpu_profile: None,
            #[cfg(feature = "profile")]
            cpu_collector: None,
            #[cfg(feature = "otel")]
            process_metrics: true,
        }
    }
}

impl fmt::Debug for TasklineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TasklineBuilder")
            .field("config", &self.config)
            .field("tracing", &self.tracing.is_some())
            .field("resource_waits", &self.resource_waits)
            .finish_non_exhaustive()
    }
}

impl TasklineBuilder {
    /// The recorder's configuration (buffer sizes, slow-poll threshold, ...).
    pub fn recorder_config(mut self, config: RecorderConfig) -> Self {
        self.config = config;
        self
    }

    /// Installs taskline's subscriber in front of `inner` (your
    /// `tracing_subscriber::registry()` stack with its layers, as you would
    /// have `.init()`ed it) as the process's global default when
    /// [`start`](Self::start) succeeds. It adds wakes (who woke whom), task
    /// names and blocking sections from Tokio's instrumentation and forwards
    /// everything else to `inner` unchanged ([`TasklineSubscriber`]).
    ///
    /// `start` fails with [`SetupError::Subscriber`] (and installs nothing)
    /// if `inner` has no registry underneath or a global subscriber exists.
    /// To install it yourself (e.g. per thread with
    /// `tracing::subscriber::set_default`), use [`Taskline::subscriber`].
    pub fn tracing<S>(mut self, inner: S) -> Self
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        self.tracing = Some(Box::new(move |recorder: &Recorder, resource_waits| {
            let subscriber =
                TasklineSubscriber::new(recorder, inner)?.with_resource_waits(resource_waits);
            Ok(tracing::Dispatch::new(subscriber))
        }));
        self
    }

    /// With [`tracing`](Self::tracing): also record which resource a task
    /// waits on (`Mutex`, `Semaphore`, `Sleep`, ...); see
    /// [`TasklineSubscriber::with_resource_waits`] for what it costs.
    pub fn resource_waits(mut self, on: bool) -> Self {
        self.resource_waits = on;
        self
    }

    /// How long shutdown (and the guard's drop) waits for the last OTLP
    /// export before giving up with [`SetupError::Timeout`] (default
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`]; nothing else in shutdown waits on the
    /// network).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Stream a Perfetto trace of everything recorded to `path`, finished
    /// (end marker, drop count) when the guard shuts down or drops.
    #[cfg(feature = "trace")]
    pub fn trace_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace_file = Some(path.into());
        self
    }

    /// How [`trace_file`](Self::trace_file) writes its trace (default
    /// [`TraceOptions::default`]), e.g. deflated packets for a file about
    /// five times smaller at the price of a core's worth of encoding:
    ///
    /// ```no_run
    /// use taskline::trace::TraceOptions;
    ///
    /// let taskline = taskline::Taskline::builder()
    ///     .trace_file("out/app.perfetto-trace")
    ///     .trace_options(TraceOptions { compress: true, ..TraceOptions::default() })
    ///     .start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "trace")]
    pub fn trace_options(mut self, options: TraceOptions) -> Self {
        self.trace_options = options;
        self
    }

    /// Keep a flight recorder: the last seconds in memory, dumped as a
    /// Perfetto trace on demand and automatically when a poll blocks its
    /// worker for longer than the recorder's `slow_poll_threshold` (see
    /// [`recorder_config`](Self::recorder_config)).
    #[cfg(feature = "trace")]
    pub fn flight_recorder(mut self, config: FlightConfig) -> Self {
        self.flight = Some(config);
        self
    }

    /// With a [`flight_recorder`](Self::flight_recorder): on a panic, dump
    /// its window into its `dump_dir` before the panic goes on (the
    /// previous panic hook still runs after). Opt-in; see
    /// [`taskline_trace::flight::dump_on_panic`] for the details.
    #[cfg(feature = "trace")]
    pub fn dump_on_panic(mut self) -> Self {
        self.dump_on_panic = true;
        self
    }

    /// The limits of [`Taskline::trace_for`]'s on-demand traces (longest
    /// window, event cap, time between two); [`OnDemandConfig::default`]
    /// without this call. On-demand traces are always available and cost
    /// nothing until one is asked for.
    #[cfg(feature = "trace")]
    pub fn on_demand(mut self, config: OnDemandConfig) -> Self {
        self.on_demand = config;
        self
    }

    /// Export task metrics, and the runtime metrics of every runtime built
    /// with [`Taskline::build_runtime`], over OTLP. `OtlpConfig::new()`
    /// honours the standard `OTEL_EXPORTER_OTLP_*` variables.
    #[cfg(feature = "otel")]
    pub fn otlp(mut self, config: OtlpConfig) -> Self {
        self.otlp = Some((config, TaskMetricsConfig::default()));
        self
    }

    /// Samples the CPU of every runtime thread [`Taskline::build_runtime`]
    /// (or [`Taskline::instrument`]) makes, labelled by task, spawn site
    /// and worker (see [`taskline_profile`]); read the profile with
    /// [`Taskline::cpu_profiler`]. The profiler's recorder is set to this
    /// taskline's. With [`trace_file`](Self::trace_file) too, the trace
    /// also holds the timed samples, on the sampled threads' tracks
    /// (written at shutdown; at most `config.trace_samples` of them).
    /// Linux only: elsewhere `start` fails with
    /// [`SetupError::Profile`] (`Unsupported`).
    #[cfg(feature = "profile")]
    pub fn cpu_profile(mut self, config: ProfilerConfig) -> Self {
        self.cpu_profile = Some(config);
        self
    }

    /// Collects CPU profiles periodically, like Go's profile collectors:
    /// every `config.interval`, samples the runtime threads for
    /// `config.duration` and writes `cpu-<UTC time>.pb.gz` into
    /// `config.dir`, keeping the newest `config.max_files` (see
    /// [`taskline_profile::ProfileCollector`]). Each profile written counts
    /// in the OTLP export's `taskline.profiles.collected{profile.type=cpu}`
    /// (with [`otlp`](Self::otlp)), after `config.on_profile` if one is set.
    /// A process has one CPU profiler: with [`cpu_profile`](Self::cpu_profile)
    /// too, `start` fails with [`SetupError::Profile`].
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use taskline::profile::CollectorConfig;
    /// let taskline = taskline::Taskline::builder()
    ///     .cpu_profile_collector(
    ///         CollectorConfig::new("profiles")
    ///             .interval(Duration::from_secs(60))
    ///             .duration(Duration::from_secs(10)),
    ///     )
    ///     .start()?;
    /// # Ok::<(), taskline::SetupError>(())
    /// ```
    #[cfg(feature = "profile")]
    pub fn cpu_profile_collector(mut self, config: CollectorConfig) -> Self {
        self.cpu_collector = Some(config);
        self
    }

    /// Like [`otlp`](Self::otlp), with a task-metrics configuration.
    #[cfg(feature = "otel")]
    pub fn otlp_with(mut self, config: OtlpConfig, tasks: TaskMetricsConfig) -> Self {
        self.otlp = Some((config, tasks));
        self
    }

    /// Whether the OTLP export also carries the process metrics
    /// (`process.cpu.time`, `process.memory.usage`, ...; see
    /// [`taskline_otel::ProcessMetricsExporter`]). On by default with
    /// [`otlp`](Self::otlp); Linux only (elsewhere nothing is registered).
    #[cfg(feature = "otel")]
    pub fn process_metrics(mut self, on: bool) -> Self {
        self.process_metrics = on;
        self
    }

    /// Starts the recorder and every output asked for, then installs the
    /// subscriber given to [`tracing`](Self::tracing) (last, so a failed
    /// start leaves no global subscriber behind). On error, whatever was
    /// started is stopped again.
    pub fn start(self) -> Result<Taskline, SetupError> {
        #[cfg(feature = "trace")]
        self.on_demand.validate().map_err(SetupError::OnDemand)?;
        let recorder = Recorder::new(self.config).map_err(SetupError::Config)?;
        #[allow(unused_mut)] // the outputs are set below, per feature
        let mut taskline = Taskline {
            instrumented: world::join(&recorder),
            recorder,
            finished: false,
            #[cfg(feature = "otel")]
            shutdown_timeout: self.shutdown_timeout,
            #[cfg(feature = "trace")]
            trace: None,
            #[cfg(feature = "trace")]
            flight: None,
            #[cfg(feature = "trace")]
            on_demand: OnDemand::new(self.on_demand),
            #[cfg(feature = "otel")]
            otlp: None,
            #[cfg(feature = "otel")]
            runtimes: Mutex::new(Vec::new()),
            #[cfg(feature = "profile")]
            profiler: None,
            #[cfg(feature = "profile")]
            collector: None,
            #[cfg(feature = "otel")]
            process: None,
            #[cfg(feature = "otel")]
            profiles: None,
        };
        // `taskline` drops (and cleans up) on every early return below.
        #[cfg(feature = "trace")]
        {
            if let Some(path) = self.trace_file {
                let (writer, handle) = PerfettoWriter::create_with(&path, self.trace_options)
                    .map_err(|source| SetupError::TraceFile { path, source })?;
                taskline.recorder.add_sink(writer);
                taskline.trace = Some(handle);
            }
            if let Some(config) = self.flight {
                let (sink, handle) =
                    FlightRecorder::for_recorder(config, taskline.recorder.config())
                        .map_err(SetupError::Flight)?;
                taskline.recorder.add_sink(sink);
                taskline.flight = Some(handle);
            }
            match (self.dump_on_panic, &taskline.flight) {
                (false, _) => {}
                (true, Some(handle)) => {
                    taskline_trace::flight::dump_on_panic(&taskline.recorder, handle)
                }
                (true, None) => return Err(SetupError::DumpOnPanicWithoutFlightRecorder),
            }
        }
        #[cfg(feature = "otel")]
        if let Some((config, tasks)) = self.otlp {
            let guard = taskline_otel::init_otlp(config).map_err(SetupError::Otlp)?;
            taskline.recorder.add_sink(TaskMetricsSink::for_recorder(
                &guard.meter(),
                taskline.recorder.config(),
                tasks,
            ));
            if self.process_metrics {
                taskline.process = Some(ProcessMetricsExporter::register(&guard.meter()));
            }
            taskline.profiles = Some(ProfilesCollected::new(&guard.meter()));
            taskline.otlp = Some(guard);
        }
        #[cfg(feature = "profile")]
        {
            if self.cpu_profile.is_some() && self.cpu_collector.is_some() {
                return Err(SetupError::Profile(ProfileError::AlreadyRunning));
            }
            if let Some(config) = self.cpu_profile {
                let config = config.recorder(&taskline.recorder);
                taskline.profiler = Some(Profiler::start(config).map_err(SetupError::Profile)?);
            }
            if let Some(mut config) = self.cpu_collector {
                config.profiler = config.profiler.recorder(&taskline.recorder);
                #[cfg(feature = "otel")]
                if let Some(profiles) = taskline.profiles.clone() {
                    let user = config.on_profile.take();
                    config = config.on_profile(move |p| {
                        if let Some(f) = &user {
                            f(p);
                        }
                        profiles.add(taskline_otel::ProfileType::Cpu);
                    });
                }
                taskline.collector =
                    Some(ProfileCollector::start(config).map_err(SetupError::Profile)?);
            }
        }
        // The subscriber is made last, after every output started, and the
        // interest cache is rebuilt once it is installed: a dispatcher made
        // before the OTLP pipeline (whose HTTP client runs a Tokio runtime of
        // its own, hitting Tokio's waker callsites first) would otherwise
        // record no wake at all (see `taskline_core::after_global_install`;
        // tests/end_to_end.rs checks the wakes with OTLP on).
        if let Some(make) = self.tracing {
            let dispatch =
                make(&taskline.recorder, self.resource_waits).map_err(SetupError::Subscriber)?;
            tracing::dispatcher::set_global_default(dispatch)
                .map_err(|e| SetupError::Subscriber(SubscriberError::AlreadySet(e)))?;
            taskline_core::after_global_install();
            world::set_global(taskline.recorder.id());
        }
        world::check(taskline.recorder.id());
        Ok(taskline)
    }
}

/// A running taskline: one recorder fed by the runtime hooks of the
/// runtimes it instruments and (opt-in) by its `tracing` subscriber, plus
/// the outputs the builder asked for (trace file, flight recorder, OTLP).
/// [`shutdown`](Self::shutdown) finishes them and reports errors; dropping
/// the guard does the same, printing errors to stderr (bounded: the OTLP
/// export is given [`TasklineBuilder::shutdown_timeout`]; never panics).
///
/// Keep the guard alive as long as the runtimes: declare it first, so the
/// runtimes drop (and their last tasks terminate) before it finishes.
///
/// ```
/// let taskline = taskline::Taskline::builder().start().unwrap();
/// let rt = taskline
///     .build_runtime(tokio::runtime::Builder::new_multi_thread().enable_all(), "main")
///     .unwrap();
/// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// drop(rt);
/// println!("{}", taskline.report());
/// taskline.shutdown().unwrap();
/// ```
pub struct Taskline {
    recorder: Recorder,
    instrumented: Arc<AtomicBool>,
    finished: bool,
    #[cfg(feature = "otel")]
    shutdown_timeout: Duration,
    #[cfg(feature = "trace")]
    trace: Option<TraceHandle<std::fs::File>>,
    #[cfg(feature = "trace")]
    flight: Option<FlightRecorderHandle>,
    #[cfg(feature = "trace")]
    on_demand: OnDemand,
    #[cfg(feature = "otel")]
    otlp: Option<OtlpGuard>,
    #[cfg(feature = "otel")]
    runtimes: Mutex<Vec<RuntimeMetricsExporter>>,
    #[cfg(feature = "profile")]
    profiler: Option<ProfilerGuard>,
    #[cfg(feature = "profile")]
    collector: Option<ProfileCollector>,
    #[cfg(feature = "otel")]
    process: Option<ProcessMetricsExporter>,
    #[cfg(feature = "otel")]
    profiles: Option<ProfilesCollected>,
}

impl fmt::Debug for Taskline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Taskline")
            .field("recorder", &self.recorder)
            .finish_non_exhaustive()
    }
}

impl Taskline {
    /// A builder with the default recorder configuration and no outputs.
    pub fn builder() -> TasklineBuilder {
        TasklineBuilder::default()
    }

    /// Instruments `builder` with the runtime hooks (spawn, poll, terminate,
    /// park), builds the runtime and, with [`TasklineBuilder::otlp`],
    /// exports its `RuntimeMetrics` under `tokio.runtime.name = name`.
    ///
    /// The hooks replace `on_task_spawn`, `on_before_task_poll`,
    /// `on_after_task_poll`, `on_task_terminate`, `on_thread_park` and
    /// `on_thread_unpark` callbacks set on `builder` before (Tokio keeps one
    /// per hook).
    pub fn build_runtime(&self, builder: &mut Builder, name: &str) -> Result<Runtime, SetupError> {
        let runtime = self
            .instrument(builder)
            .build()
            .map_err(SetupError::Runtime)?;
        self.watch_runtime(runtime.handle(), name);
        Ok(runtime)
    }

    /// Instruments `builder` with the runtime hooks for this recorder,
    /// for a runtime you build yourself; pair it with
    /// [`watch_runtime`](Self::watch_runtime) for its OTel metrics.
    ///
    /// With [`TasklineBuilder::cpu_profile`], this also sets the builder's
    /// `on_thread_start` callback (replacing one set before) to register
    /// every runtime thread with the CPU profiler.
    pub fn instrument<'a>(&self, builder: &'a mut Builder) -> &'a mut Builder {
        taskline_core::instrument(builder, &self.recorder);
        #[cfg(feature = "profile")]
        if let Some(handle) = self
            .profiler
            .as_ref()
            .map(ProfilerGuard::handle)
            .or_else(|| self.collector.as_ref().map(ProfileCollector::handle))
        {
            builder.profile_threads(&handle);
        }
        self.instrumented.store(true, Ordering::Relaxed);
        world::check(self.recorder.id());
        builder
    }

    /// Exports this runtime's `RuntimeMetrics` over OTLP under
    /// `tokio.runtime.name = name` until the guard finishes. A no-op
    /// without [`TasklineBuilder::otlp`] (or without feature `otel`).
    pub fn watch_runtime(&self, handle: &tokio::runtime::Handle, name: &str) {
        #[cfg(feature = "otel")]
        if let Some(guard) = &self.otlp {
            let exporter = RuntimeMetricsExporter::register(&guard.meter(), handle.clone(), name);
            self.runtimes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(exporter);
        }
        #[cfg(not(feature = "otel"))]
        let _ = (handle, name);
    }

    /// The recorder: take [`Recorder::snapshot`]s, add your own sinks, or
    /// pass it where a `&Recorder` is wanted.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Flushes, then a copy of the aggregates ([`Recorder::snapshot`]).
    pub fn snapshot(&self) -> Snapshot {
        self.recorder.snapshot()
    }

    /// The text report of a fresh [`snapshot`](Self::snapshot), preceded by
    /// a warning line when this recorder is [mixed](Self::mixing) with another.
    pub fn report(&self) -> String {
        let snapshot = self.recorder.snapshot();
        match self.mixing() {
            Some(m) => format!("WARNING: {m}\n\n{snapshot}"),
            None => snapshot.to_string(),
        }
    }

    /// `Some` when this recorder and another are mixed: a runtime's hooks
    /// record into one while the process's global `tracing` subscriber (or
    /// a layer in it) records into the other, so neither has both polls
    /// and wakes. The first detection also prints one line on stderr.
    pub fn mixing(&self) -> Option<Mixing> {
        world::check(self.recorder.id())
    }

    /// taskline's `tracing` subscriber feeding this recorder, in front of
    /// `inner` (your `tracing_subscriber::registry()` stack), for you to
    /// install: `.try_init()` for the process, or
    /// `tracing::subscriber::set_default` for one thread. Wakes, task names
    /// and blocking sections at a fraction of the registry's cost; see
    /// [`TasklineSubscriber`]. [`TasklineBuilder::tracing`] installs it for you.
    pub fn subscriber<S>(&self, inner: S) -> Result<TasklineSubscriber<S>, SubscriberError>
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        world::add_probe::<TasklineSubscriber<S>>(|d| {
            d.downcast_ref::<TasklineSubscriber<S>>()
                .map(|s| s.recorder().id())
        });
        TasklineSubscriber::new(&self.recorder, inner)
    }

    /// A `tracing_subscriber` layer feeding this recorder
    /// ([`TasklineLayer`]), for stacks that need Tokio's spans themselves.
    /// It pays the registry's cost for every Tokio span; prefer
    /// [`subscriber`](Self::subscriber).
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer as _;
        world::add_probe::<RecorderTag>(|d| d.downcast_ref::<RecorderTag>().map(|t| t.0));
        TasklineLayer::new(&self.recorder).and_then(RecorderTag(self.recorder.id()))
    }

    /// The trace file's handle (bytes and events written), if enabled. Clone
    /// it before [`shutdown`](Self::shutdown) to read the final counts.
    #[cfg(feature = "trace")]
    pub fn trace_file(&self) -> Option<&TraceHandle<std::fs::File>> {
        self.trace.as_ref()
    }

    /// The CPU profiler [`TasklineBuilder::cpu_profile`] started: its
    /// [`profile`](ProfilerGuard::profile) so far (write it with
    /// `write_pprof`), pause/resume. It stops at shutdown.
    #[cfg(feature = "profile")]
    pub fn cpu_profiler(&self) -> Option<&ProfilerGuard> {
        self.profiler.as_ref()
    }

    /// The periodic collector [`TasklineBuilder::cpu_profile_collector`]
    /// started (its count of profiles written, failures). It stops at
    /// shutdown.
    #[cfg(feature = "profile")]
    pub fn cpu_profile_collector(&self) -> Option<&ProfileCollector> {
        self.collector.as_ref()
    }

    /// The flight recorder's handle (dump on demand, stats), if enabled.
    #[cfg(feature = "trace")]
    pub fn flight_recorder(&self) -> Option<&FlightRecorderHandle> {
        self.flight.as_ref()
    }

    /// Records the next `duration` of events into a Perfetto trace at
    /// `path`, like Go's `/debug/pprof/trace?seconds=N`: the window
    /// `[now, now + duration)` and nothing else, its tasks named by spawn
    /// site (also those spawned before it), written atomically when the
    /// window ends. Returns once the window is open (it attaches the
    /// trace's sink and takes a [`snapshot`](Self::snapshot) of the live
    /// tasks to name them: a call from async code blocks its worker that
    /// long); the trace finishes by itself, and [`OnDemandTrace::wait`]
    /// blocks until the file is complete.
    ///
    /// Bounded by [`TasklineBuilder::on_demand`]'s [`OnDemandConfig`]: one
    /// trace at a time ([`OnDemandError::Busy`]), a pause between two
    /// ([`OnDemandError::TooSoon`]), a longest window
    /// ([`OnDemandError::TooLong`]), an event cap after which the trace is
    /// cut short and says so ([`OnDemandInfo::cut_short`](crate::on_demand::OnDemandInfo::cut_short)).
    /// While no trace runs nothing of it is attached to the recorder. A
    /// shutdown of the guard ends a running trace early and writes it. See
    /// [`crate::on_demand`] for the details.
    ///
    /// ```
    /// use std::time::Duration;
    /// # let dir = std::env::temp_dir().join(format!("taskline-doc-od-{}", std::process::id()));
    /// # let path = dir.join("next-200ms.pftrace");
    /// let taskline = taskline::Taskline::builder().start()?;
    /// let rt = taskline.build_runtime(tokio::runtime::Builder::new_multi_thread().enable_all(), "main")?;
    /// let trace = taskline.trace_for(Duration::from_millis(200), &path)?;
    /// rt.block_on(async {
    ///     tokio::spawn(async { tokio::task::yield_now().await }).await.unwrap();
    /// });
    /// let info = trace.wait()?; // the window ended and the file is complete
    /// assert_eq!(info.path, path);
    /// assert!(info.cut_short.is_none());
    /// // One at a time, and not right after another:
    /// assert!(matches!(
    ///     taskline.trace_for(Duration::from_millis(200), &path),
    ///     Err(taskline::on_demand::OnDemandError::TooSoon { .. })
    /// ));
    /// let file = taskline::trace::read_trace(&std::fs::read(&path)?)?;
    /// assert!(file.events.iter().all(|e| (info.start_ns..info.end_ns).contains(&e.ts_ns)));
    /// # drop(rt);
    /// # taskline.shutdown()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "trace")]
    pub fn trace_for(
        &self,
        duration: Duration,
        path: impl Into<PathBuf>,
    ) -> Result<OnDemandTrace, OnDemandError> {
        self.on_demand.start(&self.recorder, duration, path.into())
    }

    /// The OTLP export's counters (succeeded, failed), if enabled.
    #[cfg(feature = "otel")]
    pub fn otlp_stats(&self) -> Option<ExportStats> {
        self.otlp.as_ref().map(OtlpGuard::export_stats)
    }

    /// Takes a heap profile ([`crate::heap::heap_profile`]) and, with
    /// [`TasklineBuilder::otlp`], counts it in `taskline.profiles.collected`
    /// (`profile.type = heap`).
    pub fn heap_profile(&self) -> Result<Vec<u8>, crate::heap::HeapProfileError> {
        let pprof = crate::heap::heap_profile()?;
        #[cfg(feature = "otel")]
        if let Some(p) = &self.profiles {
            p.add(taskline_otel::ProfileType::Heap);
        }
        Ok(pprof)
    }

    /// The `taskline.profiles.collected` counter of the OTLP export, for a
    /// profiler to count each profile it delivers; `None` without
    /// [`TasklineBuilder::otlp`].
    #[cfg(feature = "otel")]
    pub fn profiles_collected(&self) -> Option<&ProfilesCollected> {
        self.profiles.as_ref()
    }

    /// Finishes everything: flushes the recorder (every sink, the flight
    /// recorder's window included, gets every event), makes the last OTLP
    /// export (waiting at most [`TasklineBuilder::shutdown_timeout`]),
    /// writes the trace file's end marker and stops the recorder. Tries
    /// everything and returns the first error.
    pub fn shutdown(mut self) -> Result<(), SetupError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), SetupError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        #[allow(unused_mut)] // only the trace/otel outputs can fail
        let mut first_error: Option<SetupError> = None;
        world::check(self.recorder.id());
        // A running on-demand trace ends here and is written while the
        // recorder still runs.
        #[cfg(feature = "trace")]
        self.on_demand.stop();
        #[cfg(feature = "profile")]
        {
            if let Some(profiler) = self.profiler.take() {
                // The trace gets the profiler's timed samples (sampling
                // stops first, so the log is complete).
                #[cfg(feature = "trace")]
                if let Some(trace) = &self.trace {
                    let _ = profiler.pause();
                    let samples = profiler.take_cpu_samples();
                    if samples.dropped > 0 {
                        eprintln!(
                            "taskline: the trace holds the first {} CPU samples; {} more were not kept (ProfilerConfig::trace_samples)",
                            samples.samples.len(),
                            samples.dropped
                        );
                    }
                    if let Err(e) = trace.write_cpu_samples(&samples) {
                        first_error.get_or_insert(SetupError::FinishTrace(e));
                    }
                }
                drop(profiler);
            }
            if let Some(c) = self.collector.take() {
                c.stop();
            }
        }
        self.recorder.flush();
        #[cfg(feature = "otel")]
        {
            // The provider's shutdown does the final export, which must still
            // see the runtimes; release their handles only afterwards.
            if let Some(guard) = self.otlp.take()
                && let Err(e) = shutdown_otlp(guard, self.shutdown_timeout)
            {
                first_error.get_or_insert(e);
            }
            let runtimes =
                std::mem::take(&mut *self.runtimes.lock().unwrap_or_else(|e| e.into_inner()));
            runtimes.iter().for_each(RuntimeMetricsExporter::unregister);
            if let Some(process) = self.process.take() {
                process.unregister();
            }
        }
        #[cfg(feature = "trace")]
        if let Some(trace) = self.trace.take() {
            trace.set_dropped_events(self.recorder.stats().dropped);
            if let Err(e) = trace.finish_with_registry(self.recorder.registry()) {
                first_error.get_or_insert(SetupError::FinishTrace(e));
            }
        }
        self.recorder.shutdown();
        world::leave(self.recorder.id());
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Taskline {
    fn drop(&mut self) {
        match catch_unwind(AssertUnwindSafe(|| self.finish())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("taskline: shutdown: {}", ErrorChain(&e)),
            Err(_) => eprintln!("taskline: shutdown panicked; outputs may be incomplete"),
        }
    }
}

/// Shuts the OTLP pipeline down on a helper thread and waits for it at most
/// `timeout`: the SDK bounds its own shutdown, this bounds it whatever the
/// SDK does.
#[cfg(feature = "otel")]
fn shutdown_otlp(guard: OtlpGuard, timeout: Duration) -> Result<(), SetupError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("taskline-otlp-shutdown".into())
        .spawn(move || {
            let _ = tx.send(guard.shutdown());
        });
    if let Err(e) = spawned {
        return Err(SetupError::Runtime(e));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SetupError::Otlp(e)),
        Err(_) => Err(SetupError::Timeout {
            what: "the last OTLP export",
            after: timeout,
        }),
    }
}

/// Marks a [`Taskline::layer`] with its recorder's id, so the world can
/// tell which recorder a global subscriber with that layer feeds. Does
/// nothing else.
struct RecorderTag(u64);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecorderTag {}

/// Displays an error followed by its `source()` chain.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a dyn std::error::Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// Why [`TasklineBuilder::start`], [`Taskline::build_runtime`] or
/// [`Taskline::shutdown`] failed. The cause, where there is one, is
/// [`source()`](std::error::Error::source), never flattened into the message.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The recorder configuration is invalid.
    Config(ConfigError),
    /// taskline's subscriber could not be made or installed (no registry
    /// under the given stack, or a global subscriber exists already).
    Subscriber(SubscriberError),
    /// The trace file could not be created.
    #[cfg(feature = "trace")]
    TraceFile {
        /// The file asked for.
        path: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },
    /// Finishing the trace file failed (a write failed, or it was finished already).
    #[cfg(feature = "trace")]
    FinishTrace(std::io::Error),
    /// The flight recorder refused its configuration.
    #[cfg(feature = "trace")]
    Flight(FlightError),
    /// [`TasklineBuilder::dump_on_panic`] without a flight recorder to dump.
    #[cfg(feature = "trace")]
    DumpOnPanicWithoutFlightRecorder,
    /// [`TasklineBuilder::on_demand`]'s configuration was refused.
    #[cfg(feature = "trace")]
    OnDemand(OnDemandError),
    /// The OTLP pipeline could not be built, or its last export failed.
    #[cfg(feature = "otel")]
    Otlp(taskline_otel::otlp::Error),
    /// The CPU profiler could not start (bad configuration, another
    /// profiler or `SIGPROF` handler, or not Linux).
    #[cfg(feature = "profile")]
    Profile(ProfileError),
    /// The runtime (or a helper thread) could not be built.
    Runtime(std::io::Error),
    /// Shutdown stopped waiting for something.
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Config(_) => f.write_str("invalid taskline recorder configuration"),
            SetupError::Subscriber(_) => {
                f.write_str("cannot install taskline's tracing subscriber")
            }
            #[cfg(feature = "trace")]
            SetupError::TraceFile { path, .. } => {
                write!(f, "cannot create trace file {}", path.display())
            }
            #[cfg(feature = "trace")]
            SetupError::FinishTrace(_) => f.write_str("cannot finish the trace file"),
            #[cfg(feature = "trace")]
            SetupError::Flight(_) => f.write_str("cannot start the flight recorder"),
            #[cfg(feature = "trace")]
            SetupError::DumpOnPanicWithoutFlightRecorder => {
                f.write_str("dump_on_panic needs a flight_recorder to dump")
            }
            #[cfg(feature = "trace")]
            SetupError::OnDemand(_) => f.write_str("invalid on-demand trace configuration"),
            #[cfg(feature = "otel")]
            SetupError::Otlp(_) => f.write_str("OTLP metrics export"),
            #[cfg(feature = "profile")]
            SetupError::Profile(_) => f.write_str("cannot start the CPU profiler"),
            SetupError::Runtime(_) => f.write_str("cannot build the Tokio runtime"),
            SetupError::Timeout { what, after } => {
                write!(f, "gave up waiting for {what} after {after:?}")
            }
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Config(e) => Some(e),
            SetupError::Subscriber(e) => Some(e),
            #[cfg(feature = "trace")]
            SetupError::TraceFile { source, .. } => Some(source),
            #[cfg(feature = "trace")]
            SetupError::FinishTrace(e) => Some(e),
            #[cfg(feature = "trace")]
            SetupError::Flight(e) => Some(e),
            #[cfg(feature = "trace")]
            SetupError::DumpOnPanicWithoutFlightRecorder => None,
            #[cfg(feature = "trace")]
            SetupError::OnDemand(e) => Some(e),
            #[cfg(feature = "otel")]
            SetupError::Otlp(e) => Some(e),
            #[cfg(feature = "profile")]
            SetupError::Profile(e) => Some(e),
            SetupError::Runtime(e) => Some(e),
            SetupError::Timeout { .. } => None,
        }
    }
}
